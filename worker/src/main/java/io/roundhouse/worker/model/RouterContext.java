package io.roundhouse.worker.model;

/**
 * What a router's forward knows besides its input: whether it trains (noise, auxiliary losses) or
 * evaluates; the optimizer step (a schedule's position, e.g. the dense-to-sparse temperature); the
 * run's seed and the noise's Philox stream (with the element index they key any noise); and the
 * global index of the input's first row (the noise one worker holding every row would draw, and
 * its place in the global batch, for expert choice).
 */
public final class RouterContext {
    /** Evaluation after training: no noise, schedules at their end. */
    public static final RouterContext EVALUATION = new RouterContext(false, Long.MAX_VALUE, 0, 0, 0).fixed();

    /** Rows whose noise a pre-gate draws are shifted by this many (2^36), past any batch's rows. */
    static final long PRE_GATE_ROWS = 1L << 36;

    private boolean train;
    private long step;
    private long seed;
    private long stream;
    private long firstRow;
    private boolean fixed;
    private RouterContext preGate;  // made on first use, then set again each time (fixed: made once)

    public RouterContext(boolean train, long step, long seed, long stream, long firstRow) {
        set(train, step, seed, stream, firstRow);
    }

    /**
     * Sets every field: a block keeps one context and sets it at each forward, so a step makes
     * none (a router reads its context during its forward and keeps nothing of it).
     */
    public RouterContext set(boolean train, long step, long seed, long stream, long firstRow) {
        if (fixed) {
            throw new IllegalStateException("a fixed RouterContext (" + this + ") is shared and cannot be set");
        }
        this.train = train;
        this.step = step;
        this.seed = seed;
        this.stream = stream;
        this.firstRow = firstRow;
        return this;
    }

    /**
     * Makes this context (and its pre-gate's, made now) unsettable, for a shared constant such as
     * {@link #EVALUATION}: any thread may read it.
     */
    RouterContext fixed() {
        preGate = new RouterContext(train, step, seed, stream, firstRow + PRE_GATE_ROWS);
        preGate.fixed = true;
        fixed = true;
        return this;
    }

    public boolean train() {
        return train;
    }

    public long step() {
        return step;
    }

    public long seed() {
        return seed;
    }

    public long stream() {
        return stream;
    }

    public long firstRow() {
        return firstRow;
    }

    /**
     * The context of the next MoE layer's router when this layer's input routes it (pre-gating):
     * its noise drawn at rows shifted by {@link #PRE_GATE_ROWS} of this layer's stream, apart from
     * this layer's own router's. The same object each time, set from this one's fields.
     */
    public RouterContext preGate() {
        if (fixed) {
            return preGate;
        }
        if (preGate == null) {
            preGate = new RouterContext(train, step, seed, stream, firstRow + PRE_GATE_ROWS);
        }
        return preGate.set(train, step, seed, stream, firstRow + PRE_GATE_ROWS);
    }

    @Override
    public String toString() {
        return "RouterContext[train=" + train + ", step=" + step + ", seed=" + seed + ", stream=" + stream
                + ", firstRow=" + firstRow + "]";
    }
}
