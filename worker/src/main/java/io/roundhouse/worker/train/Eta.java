package io.roundhouse.worker.train;

/**
 * The time a run has left, from the measured time per step: the first {@link #SKIPPED} steps
 * seen (start-up, JIT warm-up, the first checkpoint's and evaluation's set-up) are left out, and
 * until {@link #MEASURED} more are done there is no estimate. Never 0 while steps remain.
 */
public final class Eta {
    /** Steps seen before the clock starts. */
    static final int SKIPPED = 5;
    /** Steps timed before the first estimate. */
    static final int MEASURED = 5;

    private int seen;
    private int fromStep;
    private double fromSeconds;
    private int lastStep;
    private double lastSeconds;

    /** Step {@code step} ended {@code elapsedSeconds} after the run started. */
    public void stepDone(int step, double elapsedSeconds) {
        seen++;
        if (seen == SKIPPED) {
            fromStep = step;
            fromSeconds = elapsedSeconds;
        }
        lastStep = step;
        lastSeconds = elapsedSeconds;
    }

    /** Seconds left to step {@code total}, or −1 while there is no estimate yet; at least 1 while steps remain. */
    public long secondsLeft(int total) {
        if (lastStep >= total) {
            return 0;
        }
        if (seen < SKIPPED + MEASURED || lastStep <= fromStep) {
            return -1;
        }
        double perStep = (lastSeconds - fromSeconds) / (lastStep - fromStep);
        return Math.max(1, (long) Math.ceil(perStep * (total - lastStep)));
    }

    /** For a progress line: {@code 1m05s}, {@code 42s}, or {@code ?} while there is no estimate. */
    public String format(int total) {
        long s = secondsLeft(total);
        if (s < 0) {
            return "?";
        }
        return s >= 60 ? (s / 60) + "m" + String.format("%02d", s % 60) + "s" : s + "s";
    }
}
