package io.roundhouse.worker.train;

import io.roundhouse.worker.config.ConfigException;
import io.roundhouse.worker.data.LabeledData;
import io.roundhouse.worker.model.MoeClassifier;
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
     * Mean cross-entropy and accuracy over {@code data} in its stored order, in evaluation mode (no
     * dropout, dropless), each worker evaluating its shards of the {@link EvalPlan}'s batches; the
     * result is summed over the workers.
     */
    static double[] of(MoeClassifier model, WorkerGroup group, LabeledData data, int evalBatch, long seed,
                        StepStats stats) {
        EvalPlan plan = EvalPlan.of(data.size(), evalBatch, group.size());
        Batcher batcher = new Batcher(model.backend(), data, plan.maxPiece(), seed);
        double loss = 0;
        long correct = 0;
        for (int b = 0; b < plan.batches(); b++) {
            int from = plan.start(b);
            int len = plan.start(b + 1) - from;
            int lo = from + WorkerGroup.shardStart(len, group.rank(), group.size());
            int n = from + WorkerGroup.shardStart(len, group.rank() + 1, group.size()) - lo;
            batcher.load(lo, n);
            model.forward(batcher.x().rows(n), batcher.y().rows(n), batcher.hostLabels(), false, 0, 0, stats);
            loss += stats.crossEntropy * n;
            correct += stats.correct;
        }
        float[] sums = {(float) loss, correct};
        group.sum(sums);
        return new double[] {sums[0] / data.size(), sums[1] / (double) data.size()};
    }

    /**
     * Evaluation over partitioned data: each worker walks its own part in as many batches as the
     * largest part needs (so every worker makes the same collective calls; each batch holds at
     * least one example, so every part must hold at least that many), and the sums are added.
     */
    static double[] ofParts(MoeClassifier model, WorkerGroup group, LabeledData data, int evalBatch, long seed,
                             StepStats stats) {
        float[] sizes = new float[group.size()];
        sizes[group.rank()] = data.size();
        group.sum(sizes);
        int batches = 1;
        double total = 0;
        for (float n : sizes) {
            batches = Math.max(batches, (Math.round(n) + evalBatch - 1) / evalBatch);
            total += n;
        }
        for (int w = 0; w < sizes.length; w++) {
            if (Math.round(sizes[w]) < batches) {
                throw new ConfigException("worker " + w + "'s part of the " + data.name() + " set holds "
                        + Math.round(sizes[w]) + " examples, fewer than the " + batches + " evaluation batches the "
                        + "largest part needs; raise train.evalBatchSize or use fewer workers");
            }
        }
        Batcher batcher = new Batcher(model.backend(), data, Math.min(evalBatch, data.size()), seed);
        double loss = 0;
        long correct = 0;
        for (int b = 0; b < batches; b++) {
            int from = WorkerGroup.shardStart(data.size(), b, batches);
            int n = WorkerGroup.shardStart(data.size(), b + 1, batches) - from;
            batcher.load(from, n);
            model.forward(batcher.x().rows(n), batcher.y().rows(n), batcher.hostLabels(), false, 0, 0, stats);
            loss += stats.crossEntropy * n;
            correct += stats.correct;
        }
        float[] sums = {(float) loss, correct};
        group.sum(sums);
        return new double[] {sums[0] / total, sums[1] / total};
    }
}
