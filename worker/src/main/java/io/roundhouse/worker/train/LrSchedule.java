package io.roundhouse.worker.train;

/**
 * Linear warm-up from 0 to the peak over {@code warmup} steps, then cosine decay to
 * {@code peak·minFraction} at step {@code total}. Steps count from 1.
 */
public record LrSchedule(double peak, double minFraction, int warmup, int total) {

    public double at(int step) {
        if (warmup > 0 && step <= warmup) {
            return peak * step / warmup;
        }
        double min = peak * minFraction;
        int span = Math.max(1, total - warmup);
        double progress = Math.min(1.0, (step - warmup) / (double) span);
        return min + (peak - min) * 0.5 * (1 + Math.cos(Math.PI * progress));
    }
}
