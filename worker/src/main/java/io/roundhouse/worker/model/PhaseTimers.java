package io.roundhouse.worker.model;

/**
 * Wall time per phase of a step, accumulated over the blocks; reset by the trainer each step.
 * Each compute phase holds its forward and its backward: embed, attention (the language model's
 * norm, projections, rotary, attention and gate), mixer (a NiNformer's gating unit: its norms, the
 * gate, token and channel mixing), route (router, gates, router losses), permute,
 * experts, unpermute, head (final norm, output layer, loss). Dispatch and combine hold every
 * exchange of the step, forward and backward (dispatch also the sum of router statistics over the
 * workers), so they include waiting for slower peers. Backward is the rest of the backward pass
 * (residual adds, dropout, the other norms, dense FFN blocks); all-reduce is the dense-gradient
 * sum, the global norm and the step's metrics sum. Plain fields: one thread drives a model.
 */
public final class PhaseTimers {
    /** The phases, in the order a step runs them. */
    public enum Phase {
        EMBED, ATTENTION, MIXER, ROUTE, PERMUTE, DISPATCH, EXPERTS, COMBINE, UNPERMUTE, HEAD, BACKWARD, ALL_REDUCE, OPTIMIZER;

        private final String key = name().toLowerCase(java.util.Locale.ROOT);

        /** Every phase in order, shared (values() copies its array at each call). */
        public static final java.util.List<Phase> ALL = java.util.List.of(values());

        /** The phase's name in records: lower case. */
        public String key() {
            return key;
        }
    }

    private final long[] nanos = new long[Phase.values().length];
    /** While tracing: each interval booked, as (phase, start, length) in System.nanoTime's terms; else null. */
    private long[] spans;
    private int spanCount;

    /**
     * Books {@code elapsedNanos} to {@code phase}, the interval that ends now (callers book right
     * after measuring). While tracing, the interval is kept too; {@link Phase#BACKWARD} is not: it is
     * booked as what the named phases left of the backward pass, not one interval.
     */
    public void add(Phase phase, long elapsedNanos) {
        nanos[phase.ordinal()] += elapsedNanos;
        if (spans != null && phase != Phase.BACKWARD) {
            keep(phase, System.nanoTime() - elapsedNanos, elapsedNanos);
        }
    }

    /**
     * Books the interval [{@code start}, {@code end}) (System.nanoTime's terms, as measured) to
     * {@code phase}; while tracing it is kept as measured, so a thread descheduled between measuring
     * and booking cannot shift it onto the next phase.
     */
    public void add(Phase phase, long start, long end) {
        nanos[phase.ordinal()] += end - start;
        if (spans != null && phase != Phase.BACKWARD) {
            keep(phase, start, end - start);
        }
    }

    private void keep(Phase phase, long start, long length) {
        if (3 * spanCount + 3 > spans.length) {
            spans = java.util.Arrays.copyOf(spans, 2 * spans.length);
        }
        spans[3 * spanCount] = phase.ordinal();
        spans[3 * spanCount + 1] = start;
        spans[3 * spanCount + 2] = length;
        spanCount++;
    }

    /** Starts keeping every interval booked (for a step's timeline) until {@link #stopTrace}. */
    public void startTrace() {
        spans = new long[3 * 256];
        spanCount = 0;
    }

    /** Stops tracing; returns the intervals kept, (phase ordinal, start nanos, length nanos) each. */
    public long[] stopTrace() {
        long[] out = spans == null ? new long[0] : java.util.Arrays.copyOf(spans, 3 * spanCount);
        spans = null;
        spanCount = 0;
        return out;
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
            m.put(p.key(), nanos[p.ordinal()] / 1e6);
        }
        return m;
    }
}
