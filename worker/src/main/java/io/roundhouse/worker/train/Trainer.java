package io.roundhouse.worker.train;

import static io.roundhouse.worker.config.ConfigKeys.BACKEND;
import static io.roundhouse.worker.config.ConfigKeys.DATA_DIR;
import static io.roundhouse.worker.config.ConfigKeys.DATA_FORMAT;
import static io.roundhouse.worker.config.ConfigKeys.DATA_VALIDATION_EXAMPLES;
import static io.roundhouse.worker.config.ConfigKeys.LOG_EVERY_STEPS;
import static io.roundhouse.worker.config.ConfigKeys.OUTPUT_DIR;
import static io.roundhouse.worker.config.ConfigKeys.TRAIN_BATCH_SIZE;
import static io.roundhouse.worker.config.ConfigKeys.TRAIN_BETA1;
import static io.roundhouse.worker.config.ConfigKeys.TRAIN_BETA2;
import static io.roundhouse.worker.config.ConfigKeys.TRAIN_CLIP_NORM;
import static io.roundhouse.worker.config.ConfigKeys.TRAIN_EPOCHS;
import static io.roundhouse.worker.config.ConfigKeys.TRAIN_EVAL_BATCH_SIZE;
import static io.roundhouse.worker.config.ConfigKeys.TRAIN_LR;
import static io.roundhouse.worker.config.ConfigKeys.TRAIN_MAX_STEPS;
import static io.roundhouse.worker.config.ConfigKeys.TRAIN_MIN_LR_FRACTION;
import static io.roundhouse.worker.config.ConfigKeys.TRAIN_SEED;
import static io.roundhouse.worker.config.ConfigKeys.TRAIN_WARMUP_STEPS;
import static io.roundhouse.worker.config.ConfigKeys.TRAIN_WEIGHT_DECAY;
import static io.roundhouse.worker.config.ConfigKeys.WORKERS;

import io.roundhouse.comms.Collectives;
import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.Backends;
import io.roundhouse.worker.checkpoint.CheckpointStore;
import io.roundhouse.worker.config.ConfigException;
import io.roundhouse.worker.config.ConfigKeys;
import io.roundhouse.worker.config.JobConfig;
import io.roundhouse.worker.data.BatchSource;
import io.roundhouse.worker.data.Batcher;
import io.roundhouse.worker.data.Examples;
import io.roundhouse.worker.data.FashionMnist;
import io.roundhouse.worker.data.DataSplits;
import io.roundhouse.worker.data.LabeledData;
import io.roundhouse.worker.model.BackendCheck;
import io.roundhouse.worker.model.Hyper;
import io.roundhouse.worker.model.Model;
import io.roundhouse.worker.model.ModelSpec;
import io.roundhouse.worker.model.Objective;
import io.roundhouse.worker.model.PhaseTimers;
import io.roundhouse.worker.model.StepStats;
import io.roundhouse.worker.parallel.DenseGradientSync;
import io.roundhouse.worker.parallel.WorkerGroup;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Training of a {@link Model} (the MoE classifier on Fashion-MNIST, or the MoE transformer language
 * model on text; see {@link ModelKind}), by one worker or as rank r of W: preflight
 * checks, data split, the step loop (forward, backward, dense-gradient all-reduce, clip, AdamW with
 * warm-up + cosine), per-step metrics to {@code metrics.jsonl}, a progress line, validation every
 * epoch and the test set at the end.
 *
 * <p>With W workers every worker reads the same data and draws the same order; step s's global
 * batch is split into W contiguous shards (sizes differ by at most one), and worker r trains on
 * shard r with its share of the experts. Losses, accuracy, expert load and evaluation results are
 * summed over the workers, so every metric is the global batch's; rank 0 alone writes the run
 * directory and prints progress.
 */
public final class Trainer {
    private static final long AUGMENT_SEED = 0x4155474D454E5453L;  // keys the augmentation's shifts

    private final JobConfig config;
    private final PrintStream console;
    private final Collectives comms;
    private final Path givenRunDir;
    private final MetricsSink remote;
    private String gpu;                  // this worker's GPU address, or null
    private DataSplits data;    // given data, or null: read data.dir
    private boolean partitioned;         // data is this worker's part only
    private java.util.function.Function<String, CheckpointStore> checkpointStores =
            CheckpointStore::local;

    /** What a finished run measured (the same on every worker; runDir is null except on rank 0). */
    public record Result(Path runDir, int steps, double wallSeconds, double validationAccuracy,
                         double testAccuracy, double testLoss, double tokensPerSecond, String parameterDigest) {

        /** The final evaluation's bits per byte (a language model's figure; NaN for the classifier). */
        public double bitsPerByte() {
            return Double.isNaN(testAccuracy) ? testLoss / Math.log(2) : Double.NaN;
        }

        /** The result a run's {@code summary.json} records. */
        public static Result of(Path runDir, com.fasterxml.jackson.databind.JsonNode summary) {
            return new Result(runDir, summary.path("steps").asInt(), summary.path("wallSeconds").asDouble(),
                    summary.path("validationAccuracy").asDouble(Double.NaN),
                    summary.has("testAccuracy") ? summary.path("testAccuracy").asDouble() : Double.NaN,
                    summary.path("testLoss").asDouble(), summary.path("tokensPerSecond").asDouble(),
                    summary.path("parameterDigest").asText());
        }
    }

    /** One worker in this process. */
    public Trainer(JobConfig config, PrintStream console) {
        this(config, console, null, null);
    }

    /**
     * @param comms  the connected group this worker belongs to (null: one worker)
     * @param runDir the run directory, already created by a launcher (null: rank 0 creates one
     *               under {@code output.dir})
     */
    public Trainer(JobConfig config, PrintStream console, Collectives comms, Path runDir) {
        this(config, console, comms, runDir, null);
    }

    /**
     * @param remote where rank 0 sends its records instead of a run directory of its own (a worker
     *               in a Spark task reports to the driver); null: the run directory
     */
    public Trainer(JobConfig config, PrintStream console, Collectives comms, Path runDir, MetricsSink remote) {
        this.config = config;
        this.comms = comms;
        this.givenRunDir = runDir;
        this.remote = remote;
        boolean quiet = comms != null && comms.member().rank() != 0;
        this.console = quiet ? new PrintStream(OutputStream.nullOutputStream()) : console;
    }

    /**
     * Trains on {@code splits} instead of reading {@code data.dir} (a Spark task gets the data the
     * driver read, by broadcast).
     */
    public Trainer withData(DataSplits splits) {
        this.data = splits;
        return this;
    }

    /**
     * Trains on {@code part}, this worker's part of the data (a Spark partition): each worker
     * shuffles its own part, takes its share of {@code data.validationExamples} from it, and
     * contributes its shard of every global batch from it; evaluation covers every worker's part.
     * The batch order then differs from one worker's (use {@link #withData} for that).
     */
    public Trainer withPartition(DataSplits part) {
        this.data = part;
        this.partitioned = true;
        return this;
    }

    /**
     * The GPU this worker was given (a Spark task's {@code gpu} resource address), for the backend;
     * recorded in the metrics' placement record.
     */
    public Trainer withGpu(String address) {
        this.gpu = address;
        return this;
    }

    /**
     * Where checkpoint folders named in the config live (default: this machine's file system; a
     * Spark task passes the Hadoop FileSystem, for hdfs:// and s3a://).
     */
    public Trainer withCheckpointStores(java.util.function.Function<String, CheckpointStore> stores) {
        this.checkpointStores = stores;
        return this;
    }

    /** Checks everything that can be checked without training; writes nothing. */
    public void preflight() {
        int workers = config.get(WORKERS);
        int batch = config.get(TRAIN_BATCH_SIZE);
        int validation = config.get(DATA_VALIDATION_EXAMPLES);
        if (batch < workers) {
            throw new ConfigException("train.batchSize = " + batch + " gives some of the " + workers
                    + " workers no examples; use a batch of at least " + workers + " or fewer workers");
        }
        if (!config.get(ConfigKeys.STN_TUNE).isEmpty() && validation == 0 && ModelKind.of(config) == ModelKind.CLASSIFIER) {
            throw new ConfigException("stn.tune needs a validation split for its hyper steps, but "
                    + "data.validationExamples = 0; hold some out (e.g. data.validationExamples=5000) or clear stn.tune");
        }
        if (validation > 0 && validation < workers && ModelKind.of(config) == ModelKind.CLASSIFIER) {
            throw new ConfigException("data.validationExamples = " + validation + " gives some of the " + workers
                    + " workers nothing to evaluate; use 0 or at least " + workers);
        }
        Backends.checkAvailable(config.get(BACKEND));
        if (data == null && ModelKind.of(config) == ModelKind.CLASSIFIER && config.get(DATA_FORMAT).equals("idx")) {
            FashionMnist.checkFolder(Path.of(config.get(DATA_DIR)));
        }
        RunFiles.checkFolders(config);
    }

    public Result run() throws IOException {
        preflight();
        ModelKind kind = ModelKind.of(config);
        if (this.data == null && kind == ModelKind.CLASSIFIER && !config.get(DATA_FORMAT).equals("idx")) {
            throw new ConfigException("data.format = " + config.get(DATA_FORMAT) + " is read by the Spark job: run "
                    + "'roundhouse spark' (an embedded local[W] master is enough), or use IDX files");
        }
        DataSplits data = this.data != null ? this.data : kind.loadLocal(config);
        int batch = config.get(TRAIN_BATCH_SIZE);
        int validation = config.get(DATA_VALIDATION_EXAMPLES);
        int workers = comms == null ? 1 : comms.member().size();
        if (workers != config.get(WORKERS)) {
            throw new ConfigException("workers = " + config.get(WORKERS) + " but this trainer is one of " + workers
                    + (comms == null ? " (started without a group: run W workers through 'roundhouse train', which "
                    + "launches them)" : "; every worker must get the same config"));
        }
        if (data.validation() != null) {
            // The data has its own validation split (a corpus's last part): train on all of the rest.
            if (partitioned) {
                throw new ConfigException("data.distribution = partitioned is for the classifier; the language model's "
                        + "workers each read the whole text (data.distribution=broadcast)");
            }
            if (data.train().size() < batch) {
                throw new ConfigException("train.batchSize = " + batch + " is larger than the " + data.train().size()
                        + " training sequences of the text; lower train.batchSize or data.seqLen, or give more text");
            }
            if (data.validation().size() < workers) {
                throw new ConfigException("the validation split holds " + data.validation().size() + " sequences, "
                        + "fewer than the " + workers + " workers; raise data.validationFraction or lower data.seqLen");
            }
            try (Backend be = Backends.create(config.get(BACKEND), gpu, BackendCheck::differences)) {
                return train(be, data.train(), data.validation(), data.test());
            }
        }
        if (partitioned) {
            // This worker's share of the validation examples comes out of its own part.
            int rank = comms == null ? 0 : comms.member().rank();
            validation = WorkerGroup.shardStart(validation, rank + 1, workers) - WorkerGroup.shardStart(validation, rank,
                    workers);
            batch = WorkerGroup.shardStart(batch, rank + 1, workers) - WorkerGroup.shardStart(batch, rank, workers);
        }
        String source = partitioned ? "worker " + (comms == null ? 0 : comms.member().rank()) + "'s part of the "
                + "training data" : "the training file";
        int trainSize = data.train().size() - validation;
        if (trainSize <= 0) {
            throw new ConfigException("data.validationExamples = " + validation + " leaves no training examples: "
                    + source + " has " + data.train().size() + "; lower data.validationExamples");
        }
        if (trainSize < batch) {
            throw new ConfigException("train.batchSize = " + batch + " is larger than the training split ("
                    + source + ": " + data.train().size() + " examples minus " + validation
                    + " for validation); lower one of them" + (partitioned ? " or use fewer workers" : ""));
        }
        if (!partitioned && data.test().size() < workers) {
            throw new ConfigException("the test set has " + data.test().size() + " examples, fewer than the "
                    + workers + " workers");
        }
        long seed = config.get(TRAIN_SEED);
        int[] perm = Batcher.permutation(data.train().size(), partitioned ? seed + 7919L * (comms == null ? 0
                : comms.member().rank() + 1) : seed);
        Examples train = data.train().subset("train", perm, 0, trainSize);
        Examples valid = validation == 0 ? null : data.train().subset("validation", perm, trainSize, validation);
        if ((config.get(ConfigKeys.AUGMENT_SHIFT) > 0 || config.get(ConfigKeys.STN_TUNE).contains("augment.shift"))
                && !(train instanceof LabeledData images && images.imageSide() > 0)) {
            throw new ConfigException("augment.shift shifts square images, but the training examples are not; set "
                    + "augment.shift=0 and leave it out of stn.tune");
        }

        try (Backend be = Backends.create(config.get(BACKEND), gpu, BackendCheck::differences)) {
            return train(be, train, valid, data.test());
        }
    }

    private Result train(Backend be, Examples train, Examples valid, Examples test) throws IOException {
        int batch = config.get(TRAIN_BATCH_SIZE);
        ModelKind kind = ModelKind.of(config);
        int evalBatch = kind.evalBatch(config);
        long seed = config.get(TRAIN_SEED);
        int experts = config.get(ConfigKeys.MODEL_EXPERTS);
        if (comms != null) {
            comms.startBarrier();  // every worker has its data and backend: from here on, comms.timeoutMs
        }
        WorkerGroup group = comms == null ? WorkerGroup.single(experts) : WorkerGroup.of(comms, experts);
        int workers = group.size();
        int maxN = (batch + workers - 1) / workers;
        for (Examples set : new Examples[] {valid, test}) {
            if (set != null) {
                maxN = Math.max(maxN, partitioned ? Math.min(evalBatch, set.size())
                        : Evaluation.EvalPlan.of(set.size(), evalBatch, workers).maxPiece());
            }
        }
        Model model = kind.build(config, be, train.shape(), seed, maxN,
                (b, rows) -> group.exchange(be, config.get(ConfigKeys.MODEL_DIM), rows));
        ModelSpec spec = model.spec();
        AdamW opt = new AdamW(be, model.params(), config.get(TRAIN_BETA1), config.get(TRAIN_BETA2), 1e-8,
                config.get(TRAIN_WEIGHT_DECAY), config.get(TRAIN_CLIP_NORM));
        int stepsPerEpoch = partitioned ? stepsPerEpochOfParts(group, train.size(), batch) : train.size() / batch;
        int epochs = config.get(TRAIN_EPOCHS);
        int maxSteps = config.get(TRAIN_MAX_STEPS);
        int total = maxSteps > 0 ? Math.min(maxSteps, epochs * stepsPerEpoch) : epochs * stepsPerEpoch;
        LrSchedule lr = new LrSchedule(config.get(TRAIN_LR), config.get(TRAIN_MIN_LR_FRACTION),
                config.get(TRAIN_WARMUP_STEPS), total);

        // The model is built: only now does the run get a directory (rank 0 writes it).
        Path runDir = null;
        MetricsSink sink = null;
        if (group.rank() == 0 && remote != null) {
            sink = remote;
        } else if (group.rank() == 0) {
            runDir = givenRunDir != null ? givenRunDir : RunFiles.createRunDir(Path.of(config.get(OUTPUT_DIR)));
            RunFiles.writeAtomically(runDir.resolve("config.conf"), config.describe());
            console.println("run directory: " + runDir);
            sink = MetricsSink.runDirectory(runDir);
        }
        Result result;
        try (MetricsSink metrics = sink) {
            result = new Loop(be, group, model, opt, lr, train, valid, test, runDir, metrics, stepsPerEpoch).run();
        }
        if (runDir != null && spec.stn().enabled()) {
            console.println("hyperparameter report: " + StnReport.write(runDir));
        }
        return result;
    }

    /**
     * Partitioned data: every worker must make the same number of steps an epoch, so the epoch is
     * as long as the smallest part allows (its examples over its shard of the batch).
     */
    private static int stepsPerEpochOfParts(WorkerGroup group, int trainSize, int batch) {
        float[] steps = new float[group.size()];
        int shard = WorkerGroup.shardStart(batch, group.rank() + 1, group.size())
                - WorkerGroup.shardStart(batch, group.rank(), group.size());
        steps[group.rank()] = trainSize / shard;
        group.sum(steps);
        int min = Integer.MAX_VALUE;
        for (float v : steps) {
            min = Math.min(min, Math.round(v));
        }
        if (min < 1) {
            throw new ConfigException("a worker's part of the training data is smaller than its " + shard
                    + " examples of each batch; lower train.batchSize or use fewer workers");
        }
        return min;
    }

    /** The step loop of one worker, with everything it needs. */
    private final class Loop {
        /** Statistics before the expert loads in {@link #sums}. */
        private static final int STATS = 6;
        private final Backend be;
        private final WorkerGroup group;
        private final Model model;
        private final AdamW opt;
        private final LrSchedule lr;
        private final Examples train;
        private final Examples valid;
        private final Examples test;
        private final BatchSource validBatches;  // allocated once, for every evaluation
        private final BatchSource testBatches;
        private final int evalBatch;
        private final Path runDir;
        private final MetricsSink metrics;     // null except on rank 0
        private final int stepsPerEpoch;
        private final DenseGradientSync sync;  // null for one worker
        private final ModelSpec spec;
        private final Objective objective;
        private final StepStats local;
        private final StepStats global;
        private final float[] sums;
        private final double[] computeMs;
        private final StnTuner tuner;          // null without a Self-Tuning Network
        private final int[] augmentShift;      // the fixed augment.shift per row, or null (off or tuned)

        Loop(Backend be, WorkerGroup group, Model model, AdamW opt, LrSchedule lr, Examples train,
             Examples valid, Examples test, Path runDir, MetricsSink metrics, int stepsPerEpoch) {
            this.stepsPerEpoch = stepsPerEpoch;
            this.be = be;
            this.group = group;
            this.model = model;
            this.opt = opt;
            this.lr = lr;
            this.train = train;
            this.valid = valid;
            this.test = test;
            this.runDir = runDir;
            this.metrics = metrics;
            this.spec = model.spec();
            this.objective = model.objective();
            this.local = new StepStats(model.moeLayers(), spec.experts());
            this.global = new StepStats(model.moeLayers(), spec.experts());
            this.sums = new float[STATS + model.moeLayers() * spec.experts() + group.size() + 1];  // + the owner's command
            this.evalBatch = ModelKind.of(config).evalBatch(config);
            long seed = config.get(TRAIN_SEED);
            this.validBatches = valid == null ? null : valid.batches(be, evalRows(valid), seed);
            this.testBatches = test == valid && validBatches != null ? validBatches
                    : test.batches(be, evalRows(test), seed);
            this.computeMs = new double[group.size()];
            this.sync = group.gradientSync(be, model.params(), sums.length);
            this.tuner = spec.stn().enabled() ? new StnTuner(config, be, model, group, valid, partitioned) : null;
            int shift = config.get(ConfigKeys.AUGMENT_SHIFT);
            if (shift == 0 || (tuner != null && tuner.tunes(Hyper.AUGMENT_SHIFT))) {
                this.augmentShift = null;
            } else {
                this.augmentShift = new int[model.maxBatch()];
                java.util.Arrays.fill(augmentShift, shift);
            }
        }

        Result run() throws IOException {
            int batch = config.get(TRAIN_BATCH_SIZE);
            long seed = config.get(TRAIN_SEED);
            int logEvery = config.get(LOG_EVERY_STEPS);
            int total = lr.total();
            int rank = group.rank();
            int workers = group.size();
            int lo = WorkerGroup.shardStart(batch, rank, workers);
            int shard = WorkerGroup.shardStart(batch, rank + 1, workers) - lo;

            int rowsPerShard = shard * model.tokensPerExample();
            console.printf("model: %s; gate=%s capacity=%s, %,d parameters; backend %s%n", model.describe(),
                    spec.gate().name().toLowerCase(), spec.capacityFactor() > 0 ? spec.capacityFactor() + " ("
                            + spec.capacity(rowsPerShard) + " copies/expert/batch" + (workers > 1 ? " per worker" : "")
                            + ")" : "dropless", group.globalParameterCount(model.params()), be.name());
            float[] sizes = {train.size(), valid == null ? 0 : valid.size(), test.size()};
            if (partitioned) {
                group.sum(sizes);  // every worker's part
            }
            console.printf("data: %d train, %d validation, %d test%s; %d steps (%d epochs of %d, batch %d%s)%n",
                    Math.round(sizes[0]), Math.round(sizes[1]), Math.round(sizes[2]),
                    partitioned ? " over the workers' parts" : "", total,
                    (total + stepsPerEpoch - 1) / stepsPerEpoch, stepsPerEpoch, batch,
                    workers > 1 ? ", " + shard + " per worker" : "");
            if (workers > 1) {
                console.print(group.placement().describe());
            }
            List<String> gpus = group.gatherStrings(gpu == null ? "" : gpu);
            if (metrics != null) {
                Map<String, Object> placement = Records.placement(group);
                if (gpus.stream().anyMatch(g -> !g.isEmpty())) {
                    placement.put("gpuByWorker", gpus);
                    console.println("GPUs by worker: " + gpus);
                }
                metrics.write(placement);
            }

            RunCheckpoints checkpoints = new RunCheckpoints(config, group, model.params(), train.shape(), runDir,
                    checkpointStores, remote);
            int firstStep = checkpoints.resume(opt);
            if (tuner != null) {
                if (firstStep > 0) {
                    tuner.resumed(firstStep);
                }
                console.printf("self-tuning network: %s, responses on %s; hyper steps after step %d, %d every %d%n",
                        Records.brief(tuner.lambda()), String.join(",", config.get(ConfigKeys.STN_LAYERS)),
                        config.get(ConfigKeys.STN_WARMUP_STEPS), config.get(ConfigKeys.STN_VALID_STEPS),
                        config.get(ConfigKeys.STN_TRAIN_STEPS));
            }
            if (firstStep > 0 && metrics != null) {
                Map<String, Object> r = new LinkedHashMap<>();
                r.put("type", "resume");
                r.put("step", firstStep);
                r.put("from", checkpoints.resumedFrom());
                r.put("changed", checkpoints.resumeChanges());
                metrics.write(r);
            }
            if (firstStep > 0) {
                console.printf("resumed at step %d from %s%n", firstStep, checkpoints.resumedFrom());
                for (String c : checkpoints.resumeChanges()) {
                    console.printf("  %s: the weights are fp32 either way, so training continues, but not bit for "
                            + "bit as it would have without the change%n", c);
                }
            }
            BatchSource batcher = train.batches(be, shard, partitioned ? seed + 7919L * (rank + 1) : seed);
            Records.Window window = new Records.Window();
            Eta eta = new Eta();
            long start = System.nanoTime();
            double validationAccuracy = Double.NaN;
            double[] lastValidation = null;
            int lastValidationStep = -1;
            int step = firstStep;
            int end = total;  // earlier when the job's owner asks to stop
            for (int epoch = firstStep / stepsPerEpoch; step < end; epoch++) {
                batcher.shuffle(epoch);
                for (int b = step % stepsPerEpoch; b < stepsPerEpoch && step < end; b++) {
                    long t0 = System.nanoTime();
                    batcher.load(partitioned ? b * shard : b * batch + lo, shard);
                    if (tuner != null) {
                        tuner.perturbWeightStep(step, lo, shard);
                    }
                    int[] shifts = tuner != null && tuner.tunes(Hyper.AUGMENT_SHIFT) ? tuner.shifts(shard)
                            : augmentShift;
                    if (shifts != null) {
                        ((Batcher) batcher).shift(shard, shifts, seed ^ AUGMENT_SEED, step, lo);
                    }
                    model.params().zeroGrads();
                    model.timers().reset();
                    model.forward(batcher, shard, true, seed, step, lo, local);
                    model.backward(batch);
                    step++;
                    double rate = lr.at(step);
                    // One collective: dense gradients, expert-gradient norms and this step's metrics.
                    long tSync = System.nanoTime();
                    packStats(tSync - t0 - model.timers().communicationNanos());
                    double norm = sync != null ? sync.allReduce(sums) : opt.gradNorm();
                    unpackStats();
                    if (sync != null) {
                        model.timers().add(PhaseTimers.Phase.ALL_REDUCE, System.nanoTime() - tSync);
                    }
                    long tOpt = System.nanoTime();
                    double gradNorm = opt.step(rate, norm);
                    model.timers().add(PhaseTimers.Phase.OPTIMIZER, System.nanoTime() - tOpt);
                    double seconds = (System.nanoTime() - t0) / 1e9;
                    window.add(global, seconds);
                    eta.stepDone(step, (System.nanoTime() - start) / 1e9);
                    if (metrics != null) {
                        Map<String, Object> record = Records.step(step, epoch, rate, gradNorm, global,
                                global.tokens / seconds, (System.nanoTime() - start) / 1e9);
                        record.put("totalSteps", total);
                        record.put("phaseMs", model.timers().millis());
                        record.put("commShare", model.timers().communicationNanos() / 1e9 / seconds);
                        if (workers > 1) {
                            record.put("computeMsByWorker", computeMs);
                        }
                        if (tuner != null) {
                            record.put("hyper", tuner.lambda());
                        }
                        metrics.write(record);
                    }
                    if (tuner != null && tuner.due(step)) {
                        Map<String, Object> hyper = tuner.hyperSteps(step);
                        if (metrics != null) {
                            metrics.write(hyper);
                        }
                    }
                    if (step % logEvery == 0 || step == total || command() == MetricsSink.STOP) {
                        console.printf("[epoch %d] step %d/%d  loss %.4f  %s  lr %.2e  |g| %.2f  dropped %.1f%%  %,.0f tok/s  ETA %s%n",
                                epoch + 1, step, total, window.loss(), objective.format(window.crossEntropy(),
                                        window.accuracy()), rate, gradNorm,
                                100 * window.droppedFraction(spec.topK() * model.moeLayers()), window.tokensPerSecond(),
                                eta.format(total));
                        if (metrics != null) {
                            metrics.flush();
                        }
                        if (tuner != null) {
                            console.printf("[epoch %d] step %d  hyperparameters %s after %d hyper steps%n", epoch + 1,
                                    step, Records.brief(tuner.lambda()), tuner.hyperStepCount());
                        }
                        window.reset();
                    }
                    int command = command();
                    if (command == MetricsSink.STOP) {
                        end = step;
                        console.printf("stopping at step %d as asked%n", step);
                    }
                    if (checkpoints.due(step, total) || (command != MetricsSink.NONE && checkpoints.possible())) {
                        String where = checkpoints.save(step, opt.steps());
                        console.printf("checkpoint at step %d: %s%n", step, where);
                        if (metrics != null) {
                            Map<String, Object> r = new LinkedHashMap<>();
                            r.put("type", "checkpoint");
                            r.put("step", step);
                            r.put("path", where);
                            metrics.write(r);
                        }
                    }
                }
                if (tuner != null) {
                    tuner.off();
                }
                if (valid != null && (step % stepsPerEpoch == 0 || step == end)) {
                    double[] v = evaluate(validBatches, valid);
                    lastValidation = v;
                    lastValidationStep = step;
                    validationAccuracy = v[1];
                    if (metrics != null) {
                        metrics.write(Records.eval("validation", step, epoch, v, objective));
                    }
                    console.printf("[epoch %d] validation: loss %.4f  %s%n", epoch + 1, v[0],
                            objective.formatEval(v[0], v[1]));
                }
            }
            if (tuner != null) {
                tuner.off();
            }
            double trainSeconds = (System.nanoTime() - start) / 1e9;
            // A corpus's final figure is its validation split's: not evaluated twice at one step.
            double[] t = test == valid && lastValidationStep == step ? lastValidation : evaluate(testBatches, test);
            double wall = (System.nanoTime() - start) / 1e9;
            String digest = group.digest(model.params());
            boolean accuracy = objective == Objective.ACCURACY;
            Result result = new Result(runDir, step, wall, accuracy ? validationAccuracy : Double.NaN,
                    accuracy ? t[1] : Double.NaN, t[0],
                    (double) (step - firstStep) * batch * model.tokensPerExample() / trainSeconds, digest);
            if (accuracy) {
                console.printf("%s: loss %.4f  accuracy %.2f%%  (%d steps in %.1f s, %,.0f tok/s)%n", test.name(),
                        t[0], 100 * t[1], step, wall, result.tokensPerSecond());
            } else {
                console.printf("%s: loss %.4f  %s  (%d steps in %.1f s, %,.0f tok/s)%n", test.name(), t[0],
                        objective.formatEval(t[0], t[1]), step, wall, result.tokensPerSecond());
            }
            console.printf("parameter digest: %s%n", digest);
            if (metrics != null) {
                metrics.write(Records.eval(test.name(), step, -1, t, objective));
                Map<String, Object> summary = Records.summary(result, group.globalParameterCount(model.params()),
                        workers, end < total, be.name());
                if (tuner != null) {
                    summary.put("hyperparameters", tuner.lambda());
                    summary.put("hyperSteps", tuner.hyperStepCount());
                }
                metrics.summary(summary);
            }
            return result;
        }

        /** Examples one evaluation forward of {@code set} takes at most on this worker. */
        private int evalRows(Examples set) {
            return partitioned ? Math.min(evalBatch, set.size())
                    : Evaluation.EvalPlan.of(set.size(), evalBatch, group.size()).maxPiece();
        }

        /** Mean cross-entropy per prediction and accuracy over {@code set}, through its batch source. */
        private double[] evaluate(BatchSource batches, Examples set) {
            return partitioned ? Evaluation.ofParts(model, group, batches, set.name(), evalBatch, local)
                    : Evaluation.of(model, group, batches, evalBatch, local);
        }

        /**
         * This step's {@link #local} statistics and this worker's time outside communication into
         * {@link #sums}, for the all-reduce.
         */
        private void packStats(long computeNanos) {
            int e = spec.experts();
            sums[0] = (float) (local.crossEntropy * local.tokens);
            sums[1] = local.correct;
            sums[2] = local.examples;
            sums[3] = local.droppedCopies;
            sums[4] = (float) local.zLoss;  // each worker's share of the global z-loss
            sums[5] = local.tokens;
            for (int b = 0; b < model.moeLayers(); b++) {
                for (int j = 0; j < e; j++) {
                    sums[STATS + b * e + j] = local.expertLoad[b][j];
                }
            }
            int at = STATS + model.moeLayers() * e;
            java.util.Arrays.fill(sums, at, sums.length, 0f);
            sums[at + group.rank()] = computeNanos / 1e6f;
            sums[sums.length - 1] = metrics != null ? metrics.pollCommand() : MetricsSink.NONE;  // rank 0 only
        }

        /** The job owner's command for this step (after {@link #unpackStats}: the same on every worker). */
        private int command() {
            return Math.round(sums[sums.length - 1]);
        }

        /**
         * {@link #global} = the summed {@link #sums}, and {@link #computeMs} every worker's time
         * outside communication this step (its spread is what the fastest worker spends waiting).
         */
        private void unpackStats() {
            int e = spec.experts();
            int at = STATS + model.moeLayers() * e;
            for (int w = 0; w < computeMs.length; w++) {
                computeMs[w] = sums[at + w];
            }
            global.examples = Math.round(sums[2]);
            global.tokens = Math.round(sums[5]);
            global.crossEntropy = sums[0] / global.tokens;
            global.correct = Math.round(sums[1]);
            global.droppedCopies = Math.round(sums[3]);
            global.zLoss = sums[4];
            global.loadBalanceLoss = local.loadBalanceLoss;  // computed from global statistics already
            for (int b = 0; b < model.moeLayers(); b++) {
                for (int j = 0; j < e; j++) {
                    global.expertLoad[b][j] = Math.round(sums[STATS + b * e + j]);
                }
            }
        }
    }
}
