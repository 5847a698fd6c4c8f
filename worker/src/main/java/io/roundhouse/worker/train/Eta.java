package io.roundhouse.worker.train;

import io.roundhouse.worker.report.Decimals;

/**
 * The time a run has left, from the measured time per step over the last {@link #WINDOW} steps (so
 * start-up and JIT warm-up fade out of it, and evaluations and checkpoints count in proportion):
 * the first {@link #SKIPPED} steps seen are left out, and until {@link #MEASURED} more are done
 * there is no estimate. Never 0 while steps remain.
 */
public final class Eta {
    /** Steps seen before the clock starts. */
    static final int SKIPPED = 5;
    /** Steps timed before the first estimate. */
    static final int MEASURED = 5;
    /** Steps the estimate looks back over. */
    static final int WINDOW = 256;

    private final int[] steps = new int[WINDOW + 1];
    private final double[] seconds = new double[WINDOW + 1];
    private int seen;
    private int kept;     // samples in the ring, at most WINDOW + 1
    private int newest;   // index of the newest sample

    /** Step {@code step} ended {@code elapsedSeconds} after the run started. */
    public void stepDone(int step, double elapsedSeconds) {
        seen++;
        if (seen < SKIPPED) {
            return;
        }
        newest = (newest + 1) % steps.length;
        steps[newest] = step;
        seconds[newest] = elapsedSeconds;
        kept = Math.min(kept + 1, steps.length);
    }

    /** Seconds left to step {@code total}, or −1 while there is no estimate yet; at least 1 while steps remain. */
    public long secondsLeft(int total) {
        int last = kept == 0 ? 0 : steps[newest];
        if (kept > 0 && last >= total) {
            return 0;
        }
        int oldest = (newest - kept + 1 + steps.length) % steps.length;
        if (kept <= MEASURED || last <= steps[oldest]) {
            return -1;
        }
        double perStep = (seconds[newest] - seconds[oldest]) / (last - steps[oldest]);
        return Math.max(1, (long) Math.ceil(perStep * (total - last)));
    }

    /** For a progress line: {@code 1m05s}, {@code 42s}, or {@code ?} while there is no estimate. */
    public String format(int total) {
        return appendTo(new StringBuilder(), total).toString();
    }

    /** {@link #format} appended to {@code sb}, allocating nothing. */
    public StringBuilder appendTo(StringBuilder sb, int total) {
        long s = secondsLeft(total);
        if (s < 0) {
            return sb.append('?');
        }
        return s >= 60 ? Decimals.digits(sb.append(s / 60).append('m'), s % 60, 2).append('s') : sb.append(s).append('s');
    }
}
