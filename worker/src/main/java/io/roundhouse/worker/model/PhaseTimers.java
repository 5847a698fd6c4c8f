package io.roundhouse.worker.model;

/**
 * Wall time per phase of a step, accumulated over the blocks; reset by the trainer each step.
 * Each compute phase holds its forward and its backward: embed, attention (the language model's
 * norm, projections, rotary, attention and gate), route (router, gates, router losses), permute,
 * experts, unpermute, head (final norm, output layer, loss). Dispatch and combine hold every
 * exchange of the step, forward and backward (dispatch also the sum of router statistics over the
 * workers), so they include waiting for slower peers. Backward is the rest of the backward pass
 * (residual adds, dropout, the other norms, dense FFN blocks); all-reduce is the dense-gradient
 * sum, the global norm and the step's metrics sum. Plain fields: one thread drives a model.
 */
public final class PhaseTimers {
    /** The phases, in the order a step runs them. */
    public enum Phase {
        EMBED, ATTENTION, ROUTE, PERMUTE, DISPATCH, EXPERTS, COMBINE, UNPERMUTE, HEAD, BACKWARD, ALL_REDUCE, OPTIMIZER
    }

    private final long[] nanos = new long[Phase.values().length];

    public void add(Phase phase, long elapsedNanos) {
        nanos[phase.ordinal()] += elapsedNanos;
    }

    public long nanos(Phase phase) {
        return nanos[phase.ordinal()];
    }

    public void reset() {
        java.util.Arrays.fill(nanos, 0);
    }

    /** The sum over every phase so far: a backward pass books what no named phase took as the difference. */
    public long total() {
        long sum = 0;
        for (long v : nanos) {
            sum += v;
        }
        return sum;
    }

    /** Time in the phases that talk to other workers: dispatch, combine, all-reduce. */
    public long communicationNanos() {
        return nanos(Phase.DISPATCH) + nanos(Phase.COMBINE) + nanos(Phase.ALL_REDUCE);
    }

    /** Milliseconds per phase, keyed by lower-case phase name (for the metrics line). */
    public java.util.Map<String, Double> millis() {
        java.util.Map<String, Double> m = new java.util.LinkedHashMap<>();
        for (Phase p : Phase.values()) {
            m.put(p.name().toLowerCase(java.util.Locale.ROOT), nanos[p.ordinal()] / 1e6);
        }
        return m;
    }
}
