package io.roundhouse.worker.train;

import io.roundhouse.worker.config.ConfigException;
import io.roundhouse.worker.data.BatchSource;
import io.roundhouse.worker.model.Model;
import io.roundhouse.worker.model.StepStats;
import io.roundhouse.worker.parallel.WorkerGroup;

/** Evaluation (no dropout, dropless) by W workers, over the whole set each holds or over their parts. */
final class Evaluation {
    private Evaluation() {
    }

    /**
     * How W workers walk an evaluation set of {@code size} examples: {@code batches} forwards
     * each, batch j covering {@code [size·j/batches, size·(j+1)/batches)} split into W shards. Every
     * worker gets at least one example per batch, and at most {@code evalBatch} (or two when the
     * set is tiny).
     */
    record EvalPlan(int size, int batches, int workers) {
        static EvalPlan of(int size, int evalBatch, int workers) {
            long perGlobal = (long) evalBatch * workers;
            int wanted = (int) ((size + perGlobal - 1) / perGlobal);
            return new EvalPlan(size, Math.max(1, Math.min(wanted, size / workers)), workers);
        }

        int start(int batch) {
            return WorkerGroup.shardStart(size, batch, batches);
        }

        int maxPiece() {
            int longest = (size + batches - 1) / batches;
            return (longest + workers - 1) / workers;
        }
    }

    /**
     * Mean cross-entropy per prediction and accuracy over the examples of {@code batches} in their
     * stored order, in evaluation mode (no dropout, dropless), each worker evaluating its shards of
     * the {@link EvalPlan}'s batches; the result is summed over the workers. {@code batches} is
     * allocated once by the caller (for {@link EvalPlan#maxPiece()} examples) and never shuffled.
     * {@code step} is the optimizer step the model has reached (its routers' schedules).
     */
    static double[] of(Model model, WorkerGroup group, BatchSource batches, int evalBatch, long step,
                       StepStats stats) {
        EvalPlan plan = EvalPlan.of(batches.size(), evalBatch, group.size());
        double loss = 0;
        long correct = 0;
        long predictions = 0;
        for (int b = 0; b < plan.batches(); b++) {
            int from = plan.start(b);
            int len = plan.start(b + 1) - from;
            int lo = from + WorkerGroup.shardStart(len, group.rank(), group.size());
            int n = from + WorkerGroup.shardStart(len, group.rank() + 1, group.size()) - lo;
            batches.load(lo, n);
            model.forward(batches, n, false, 0, step, lo, stats);
            loss += stats.crossEntropy * stats.tokens;
            correct += stats.correct;
            predictions += stats.tokens;
        }
        float[] sums = {(float) loss, correct, predictions};
        group.sum(sums);
        return new double[] {sums[0] / sums[2], sums[1] / (double) sums[2]};
    }

    /**
     * Evaluation over partitioned data: each worker walks its own part in as many batches as the
     * largest part needs (so every worker makes the same collective calls; each batch holds at
     * least one example, so every part must hold at least that many), and the sums are added.
     */
    static double[] ofParts(Model model, WorkerGroup group, BatchSource batches, String name, int evalBatch, long step,
                            StepStats stats) {
        float[] sizes = new float[group.size()];
        sizes[group.rank()] = batches.size();
        group.sum(sizes);
        int batchCount = 1;
        for (float n : sizes) {
            batchCount = Math.max(batchCount, (Math.round(n) + evalBatch - 1) / evalBatch);
        }
        for (int w = 0; w < sizes.length; w++) {
            if (Math.round(sizes[w]) < batchCount) {
                throw new ConfigException("worker " + w + "'s part of the " + name + " set holds "
                        + Math.round(sizes[w]) + " examples, fewer than the " + batchCount + " evaluation batches the "
                        + "largest part needs; raise train.evalBatchSize or use fewer workers");
            }
        }
        double loss = 0;
        long correct = 0;
        long predictions = 0;
        int size = batches.size();
        for (int b = 0; b < batchCount; b++) {
            int from = WorkerGroup.shardStart(size, b, batchCount);
            int n = WorkerGroup.shardStart(size, b + 1, batchCount) - from;
            batches.load(from, n);
            model.forward(batches, n, false, 0, step, 0, stats);
            loss += stats.crossEntropy * stats.tokens;
            correct += stats.correct;
            predictions += stats.tokens;
        }
        float[] sums = {(float) loss, correct, predictions};
        group.sum(sums);
        return new double[] {sums[0] / sums[2], sums[1] / (double) sums[2]};
    }
}
