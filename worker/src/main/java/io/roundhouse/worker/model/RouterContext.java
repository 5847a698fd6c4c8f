package io.roundhouse.worker.model;

/**
 * What a router's forward knows besides its input.
 *
 * @param train    training (noise, auxiliary losses) or evaluation
 * @param step     the optimizer step (a schedule's position, e.g. the dense-to-sparse temperature)
 * @param seed     the run's seed: with {@code stream} and the element index it keys any noise
 * @param stream   the noise's Philox stream
 * @param firstRow global index of the input's first row: the noise one worker holding every row
 *                 would draw, and its place in the global batch (expert choice)
 */
public record RouterContext(boolean train, long step, long seed, long stream, long firstRow) {
    /** Evaluation after training: no noise, schedules at their end. */
    public static final RouterContext EVALUATION = new RouterContext(false, Long.MAX_VALUE, 0, 0, 0);

    /** Rows whose noise a pre-gate draws are shifted by this many (2^36), past any batch's rows. */
    static final long PRE_GATE_ROWS = 1L << 36;

    /**
     * The context of the next MoE layer's router when this layer's input routes it (pre-gating):
     * its noise drawn at rows shifted by {@link #PRE_GATE_ROWS} of this layer's stream, apart from
     * this layer's own router's.
     */
    public RouterContext preGate() {
        return new RouterContext(train, step, seed, stream, firstRow + PRE_GATE_ROWS);
    }
}
