package io.roundhouse.worker.train;

import io.roundhouse.kernels.Backend;
import io.roundhouse.worker.checkpoint.CheckpointStore;
import io.roundhouse.worker.config.ConfigException;
import io.roundhouse.worker.config.ConfigKeys;
import io.roundhouse.worker.data.BatchSource;
import io.roundhouse.worker.data.Batcher;
import io.roundhouse.worker.model.Batch;
import io.roundhouse.worker.model.Hyper;
import io.roundhouse.worker.model.ImageModel;
import io.roundhouse.worker.model.Model;
import io.roundhouse.worker.model.ModelSpec;
import io.roundhouse.worker.model.Objective;
import io.roundhouse.worker.model.PhaseTimers;
import io.roundhouse.worker.model.StepStats;
import io.roundhouse.worker.parallel.DenseGradientSync;
import io.roundhouse.worker.parallel.WorkerGroup;
import io.roundhouse.worker.report.Decimals;
import io.roundhouse.worker.robust.AdversarialSpec;
import java.io.IOException;
import java.io.PrintStream;
import java.util.Map;
import java.util.function.Function;

/**
 * The step loop of one worker, with everything it needs: each step loads this worker's shard of
 * the global batch, runs forward and backward, sums the dense gradients and the step's statistics
 * over the workers in one all-reduce, clips and takes the AdamW step; then the step's record, a
 * progress line every {@code log.everySteps}, the Self-Tuning Network's hyper steps, checkpoints,
 * and the job owner's commands. Validation follows every epoch, the test set the last step.
 */
final class StepLoop implements AutoCloseable {
    private static final long AUGMENT_SEED = 0x4155474D454E5453L;  // keys the augmentation's shifts

    private final RunContext context;
    private final RunOutput output;
    private final PrintStream console;
    private final Backend be;
    private final WorkerGroup group;
    private final Model model;
    private final AdamW opt;
    private final LrSchedule lr;
    private final TrainingData sets;
    private final int stepsPerEpoch;
    private final String gpu;                 // this worker's GPU address, or null
    private final Function<String, CheckpointStore> checkpointStores;
    private final MetricsSink remote;         // the job owner's sink (for checkpoint commits), or null
    private final ModelSpec spec;
    private final Objective objective;
    private final StepSums sums;
    private final Evaluator evaluator;
    private final DenseGradientSync sync;     // null for one worker
    private final StnTuner tuner;             // null without a Self-Tuning Network
    private final ExpertSimilarity similarity;
    private final StepLine line = new StepLine();
    private final StringBuilder progressLine = new StringBuilder(256);
    private final double[] balance = new double[4];  // one layer's balance figures
    private final int[] augmentShift;         // the fixed augment.shift per row, or null (off or tuned)
    private final AdversarialStep adversary;  // null without adversarial training
    private String finalCheckpoint;

    StepLoop(RunContext context, RunOutput output, Backend be, WorkerGroup group, Model model, AdamW opt,
             LrSchedule lr, TrainingData sets, int stepsPerEpoch, String gpu,
             Function<String, CheckpointStore> checkpointStores, MetricsSink remote) {
        this.context = context;
        this.output = output;
        this.console = output.console();
        this.be = be;
        this.group = group;
        this.model = model;
        this.opt = opt;
        this.lr = lr;
        this.sets = sets;
        this.stepsPerEpoch = stepsPerEpoch;
        this.gpu = gpu;
        this.checkpointStores = checkpointStores;
        this.remote = remote;
        this.spec = model.spec();
        this.objective = model.objective();
        this.sums = new StepSums(model, group.size());
        this.evaluator = new Evaluator(context, be, model, group, sets, sums.local);
        this.sync = group.gradientSync(be, model.params(), sums.buffer().length,
                "all".equals(context.config().get(ConfigKeys.COMMS_OVERLAP)));
        if (sync != null) {
            model.onBlockBackward(sync::blockDone);
        }
        this.similarity = new ExpertSimilarity(group, model.params());
        this.tuner = spec.stn().enabled()
                ? new StnTuner(context.config(), be, model, group, sets.validation(), sets.partitioned()) : null;
        AdversarialSpec adv = AdversarialSpec.from(context.config());
        if (adv.on()) {
            if (!(model instanceof ImageModel image)) {
                throw new ConfigException("adv.training = " + context.config().get(ConfigKeys.ADV_TRAINING)
                        + " attacks images, and model.kind=" + context.kind().configName() + " reads text; set "
                        + "adv.training=off");
            }
            int workers = group.size();
            this.adversary = new AdversarialStep(adv, image, (context.batchSize() + workers - 1) / workers,
                    sums.buffer().length);
        } else {
            this.adversary = null;
        }
        int shift = context.augmentShift();
        if (shift == 0 || (tuner != null && tuner.tunes(Hyper.AUGMENT_SHIFT))) {
            this.augmentShift = null;
        } else {
            this.augmentShift = new int[model.maxBatch()];
            java.util.Arrays.fill(augmentShift, shift);
        }
    }

    /**
     * The checkpoint this worker's run saved of its final step (as {@link RunCheckpoints#locate}
     * takes it), or null when it saved none then; set by {@link #run}.
     */
    String finalCheckpoint() {
        return finalCheckpoint;
    }

    Trainer.Result run() throws IOException {
        int batch = context.batchSize();
        long seed = context.seed();
        int total = lr.total();
        int rank = group.rank();
        int workers = group.size();
        int lo = WorkerGroup.shardStart(batch, rank, workers);
        int shard = WorkerGroup.shardStart(batch, rank + 1, workers) - lo;
        output.header(model, group, be, sets, total, stepsPerEpoch, batch, shard, gpu);
        if (adversary != null && rank == 0) {
            console.println(adversary.describe());
        }

        RunCheckpoints checkpoints = new RunCheckpoints(context.config(), group, model.params(), sets.train().shape(),
                output.runDir(), checkpointStores, remote);
        int firstStep = checkpoints.resume(opt);
        if (tuner != null) {
            if (firstStep > 0) {
                tuner.resumed(firstStep);
            }
            output.stn(tuner, context.stn());
        }
        if (firstStep > 0) {
            output.resumed(firstStep, checkpoints);
        }
        BatchSource batcher = sets.train().batches(be, shard, TrainingData.shuffleSeed(seed, sets.partitioned(), rank));
        StepTrace trace = StepTrace.of(context.config().get(ConfigKeys.TRAIN_TRACE_STEPS));
        Records.Window window = new Records.Window();
        Eta eta = new Eta();
        long start = System.nanoTime();
        double validationAccuracy = Double.NaN;
        double[] lastValidation = null;
        int lastValidationStep = -1;
        int step = firstStep;
        int end = total;  // earlier when the job's owner asks to stop
        // Bytes allocated per step by every thread of this JVM, from 30% of the run's steps on (after
        // the JIT and the first evaluation settle) up to its last step, whose end-of-run work (the
        // final checkpoint, the similarity and progress of a log step) is left out; the periodic
        // checkpoints and log steps in between count.
        int allocationFrom = firstStep + (end - firstStep) * 3 / 10;
        long allocatedAtFrom = -1;
        long allocatedAtLast = -1;
        int lastMeasured = -1;
        for (int epoch = firstStep / stepsPerEpoch; step < end; epoch++) {
            batcher.shuffle(epoch);
            for (int b = step % stepsPerEpoch; b < stepsPerEpoch && step < end; b++) {
                if (step == allocationFrom) {
                    allocatedAtFrom = Allocation.bytes();
                } else if (step == end - 1 && allocatedAtFrom >= 0) {
                    allocatedAtLast = Allocation.bytes();
                    lastMeasured = step;
                }
                long t0 = System.nanoTime();
                batcher.load(sets.partitioned() ? b * shard : b * batch + lo, shard);
                if (tuner != null) {
                    tuner.perturbWeightStep(step, lo, shard);
                }
                int[] shifts = tuner != null && tuner.tunes(Hyper.AUGMENT_SHIFT) ? tuner.shifts(shard) : augmentShift;
                if (shifts != null) {
                    ((Batcher) batcher).shift(shard, shifts, seed ^ AUGMENT_SEED, step, lo);
                }
                model.timers().reset();
                boolean traced = trace.traces(step + 1);
                if (traced) {
                    model.timers().startTrace();
                }
                Batch rows = adversary == null ? batcher
                        : adversary.pairs(batcher, shard, batch, seed, step, lo, AdversarialStep.firstSalt());
                model.params().zeroGrads();
                model.forward(rows, adversary == null ? shard : 2 * shard, true, seed, step, lo, sums.local);
                if (sync != null) {
                    sync.backwardStarts();  // the blocks' gradient buckets start as backward finishes each
                }
                model.backward(batch);
                if (adversary != null) {
                    adversary.done(sums.local, shard);
                }
                step++;
                double rate = lr.at(step);
                // One collective: dense gradients, expert-gradient norms and this step's metrics.
                long tSync = System.nanoTime();
                sums.pack(tSync - t0 - model.timers().communicationNanos(), rank, output.pollCommand());
                double norm = sync != null ? sync.allReduce(sums.buffer()) : opt.gradNorm();
                sums.unpack();
                if (sync != null) {
                    model.timers().add(PhaseTimers.Phase.ALL_REDUCE, tSync, System.nanoTime());
                }
                long tOpt = System.nanoTime();
                double gradNorm = adversary == null ? opt.step(rate, norm)
                        : opt.step(rate, norm, adversary.firstStepMoves(), true);
                model.afterStep();
                model.timers().add(PhaseTimers.Phase.OPTIMIZER, tOpt, System.nanoTime());
                if (adversary != null && adversary.alternates()) {
                    // AdvMoE: the routers alone, on fresh adversarial examples of the updated model
                    adversary.routerStep(batcher, shard, batch, seed, step - 1, lo, opt, sync, rate);
                }
                long tEnd = System.nanoTime();
                if (traced) {
                    trace.keep(step, trace.events(model.timers().stopTrace(), t0, tEnd,
                            sync == null ? null : sync.bucketSpans()));
                }
                double seconds = (tEnd - t0) / 1e9;
                window.add(sums.global, seconds);
                eta.stepDone(step, (System.nanoTime() - start) / 1e9);
                // Every worker at the same steps (a collective): the experts' similarity per layer.
                double[] similar = step % context.logEverySteps() == 0 || step == total ? similarity.of() : null;
                if (output.records()) {
                    output.writeStep(step, stepRecord(step, epoch, rate, gradNorm, seconds, start, total, similar));
                }
                if (tuner != null && tuner.due(step)) {
                    output.write(tuner.hyperSteps(step));
                }
                if (step % context.logEverySteps() == 0 || step == total || sums.command() == MetricsSink.STOP) {
                    progress(epoch, step, total, window, rate, gradNorm, eta);
                }
                int command = sums.command();
                if (command == MetricsSink.STOP) {
                    end = step;
                    console.printf("stopping at step %d as asked%n", step);
                }
                if (checkpoints.due(step, total) || (command != MetricsSink.NONE && checkpoints.possible())) {
                    output.checkpoint(step, checkpoints.save(step, opt.steps()));
                }
            }
            if (tuner != null) {
                tuner.off();
            }
            if (evaluator.validates() && (step % stepsPerEpoch == 0 || step == end)) {
                double[] v = evaluator.validation(step);
                lastValidation = v;
                lastValidationStep = step;
                validationAccuracy = v[1];
                output.validation(sets.validation().name(), step, epoch, v, objective);
            }
        }
        if (tuner != null) {
            tuner.off();
        }
        double allocatedPerStep = allocatedAtLast < 0 ? Double.NaN
                : (double) (allocatedAtLast - allocatedAtFrom) / (lastMeasured - allocationFrom);
        trace.flush(group, output);
        finalCheckpoint = checkpoints.savedOf(step);
        double trainSeconds = (System.nanoTime() - start) / 1e9;
        // A corpus's final figure is its validation split's: not evaluated twice at one step.
        double[] t = evaluator.testIsValidation() && lastValidationStep == step ? lastValidation : evaluator.testSet(step);
        double wall = (System.nanoTime() - start) / 1e9;
        String digest = group.digest(model.params());
        boolean accuracy = objective == Objective.ACCURACY;
        Trainer.Result result = new Trainer.Result(output.runDir(), step, wall,
                accuracy ? validationAccuracy : Double.NaN, accuracy ? t[1] : Double.NaN, t[0],
                (double) (step - firstStep) * batch * model.tokensPerExample() / trainSeconds, digest);
        output.finished(result, evaluator.test(), t, objective, group.globalParameterCount(model.params()), workers,
                end < total, be.name(), tuner, allocatedPerStep);
        return result;
    }

    /**
     * Step {@code step}'s {@code train} record: the global batch's statistics, the
     * schedule, the phases' times, and on log steps the experts' similarity; one JSON line in
     * {@link #line}'s reused buffer.
     */
    private CharSequence stepRecord(int step, int epoch, double rate, double gradNorm, double seconds, long start,
                                    int total, double[] similarity) {
        StepStats s = sums.global;
        StepLine l = line.begin().field("type", "train").field("step", step).field("epoch", epoch + 1)
                .field("lr", rate).field("loss", s.totalLoss()).field("crossEntropy", s.crossEntropy)
                .field("loadBalanceLoss", s.loadBalanceLoss).field("zLoss", s.zLoss).field("accuracy", s.accuracy())
                .field("gradNorm", gradNorm).field("droppedCopies", s.droppedCopies).field("expertLoad", s.expertLoad);
        l.openArray("balance");
        for (int b = 0; b < s.expertLoad.length; b++) {
            Records.balance(s, b, balance);
            l.open(null).field("loadMaxOverMean", balance[0]).field("droppedPercent", balance[1])
                    .field("entropy", balance[2]).field("expertsPerToken", balance[3]).close();
        }
        l.closeArray().field("tokensPerSecond", s.tokens / seconds)
                .field("elapsedSeconds", (System.nanoTime() - start) / 1e9).field("totalSteps", total)
                .field("stepMs", seconds * 1000);
        PhaseTimers timers = model.timers();
        l.open("phaseMs");
        for (int i = 0; i < PhaseTimers.Phase.ALL.size(); i++) {  // every step: no iterator
            PhaseTimers.Phase p = PhaseTimers.Phase.ALL.get(i);
            l.field(p.key(), timers.nanos(p) / 1e6);
        }
        l.close().field("commShare", timers.communicationNanos() / 1e9 / seconds);
        if (group.size() > 1) {
            l.field("computeMsByWorker", sums.computeMs);
        }
        if (tuner != null) {
            l.field("hyper", tuner.lambda());
        }
        if (similarity != null) {
            l.field("expertSimilarity", similarity);
        }
        return l.end();
    }

    /** Stops the gradient all-reduce's comms thread. */
    @Override
    public void close() {
        if (sync != null) {
            sync.close();
        }
    }

    /** The progress line: averages since the last one, the schedule, the expected end. */
    private void progress(int epoch, int step, int total, Records.Window window, double rate, double gradNorm,
                          Eta eta) {
        // "[epoch %d] step %d/%d  loss %.4f  <objective>  lr %.2e  |g| %.2f  dropped %.1f%%  %,.0f tok/s  ETA <eta>",
        // built in a reused buffer: a log step allocates next to nothing
        StringBuilder sb = progressLine;
        sb.setLength(0);
        sb.append("[epoch ").append(epoch + 1).append("] step ").append(step).append('/').append(total);
        Decimals.fixed(sb.append("  loss "), window.loss(), 4).append("  ");
        objective.appendTo(sb, window.crossEntropy(), window.accuracy());
        Decimals.scientific(sb.append("  lr "), rate, 2);
        Decimals.fixed(sb.append("  |g| "), gradNorm, 2);
        Decimals.fixed(sb.append("  dropped "), 100 * window.droppedFraction(spec.topK() * model.moeLayers()), 1);
        Decimals.grouped(sb.append("%  "), window.tokensPerSecond()).append(" tok/s  ETA ");
        eta.appendTo(sb, total).append(System.lineSeparator());
        console.append(sb);
        output.flush();
        if (tuner != null) {
            console.printf("[epoch %d] step %d  hyperparameters %s after %d hyper steps%n", epoch + 1, step,
                    Records.brief(tuner.lambda()), tuner.hyperStepCount());
        }
        window.reset();
    }
}
