package io.roundhouse.worker.train;

import io.roundhouse.kernels.Backend;
import io.roundhouse.worker.data.BatchSource;
import io.roundhouse.worker.data.Examples;
import io.roundhouse.worker.model.Model;
import io.roundhouse.worker.model.StepStats;
import io.roundhouse.worker.parallel.WorkerGroup;

/**
 * One worker's evaluation of the validation and test sets over the run (see {@link Evaluation}),
 * through batch sources allocated once, for every evaluation.
 */
final class Evaluator {
    private final Model model;
    private final WorkerGroup group;
    private final int evalBatch;
    private final boolean partitioned;
    private final StepStats stats;
    private final Examples valid;             // null without a validation split
    private final Examples test;
    private final BatchSource validBatches;   // null without a validation split
    private final BatchSource testBatches;

    /** {@code stats} is overwritten by every evaluation forward (the step loop's own, reused). */
    Evaluator(RunContext context, Backend be, Model model, WorkerGroup group, TrainingData sets, StepStats stats) {
        this.model = model;
        this.group = group;
        this.evalBatch = context.evalBatch();
        this.partitioned = sets.partitioned();
        this.stats = stats;
        this.valid = sets.validation();
        this.test = sets.test();
        long seed = context.seed();
        this.validBatches = valid == null ? null : valid.batches(be, maxRows(valid, evalBatch, group.size(),
                partitioned), seed);
        // A corpus's validation split is also its final one: one source serves both.
        this.testBatches = test == valid && validBatches != null ? validBatches
                : test.batches(be, maxRows(test, evalBatch, group.size(), partitioned), seed);
    }

    /** Examples one evaluation forward of {@code set} takes at most on one of {@code workers}. */
    static int maxRows(Examples set, int evalBatch, int workers, boolean partitioned) {
        return partitioned ? Math.min(evalBatch, set.size())
                : Evaluation.EvalPlan.of(set.size(), evalBatch, workers).maxPiece();
    }

    /** Whether there is a validation split. */
    boolean validates() {
        return valid != null;
    }

    /** The test set is the validation split (a corpus's final figure is its validation split's). */
    boolean testIsValidation() {
        return test == valid;
    }

    Examples test() {
        return test;
    }

    /**
     * Mean cross-entropy per prediction and accuracy over the validation split, the model as it is
     * after optimizer step {@code step} (a router's schedule, e.g. a temperature, at that step).
     */
    double[] validation(long step) {
        return evaluate(validBatches, valid, step);
    }

    /** Mean cross-entropy per prediction and accuracy over the test set, after step {@code step}. */
    double[] testSet(long step) {
        return evaluate(testBatches, test, step);
    }

    private double[] evaluate(BatchSource batches, Examples set, long step) {
        return partitioned ? Evaluation.ofParts(model, group, batches, set.name(), evalBatch, step, stats)
                : Evaluation.of(model, group, batches, evalBatch, step, stats);
    }
}
