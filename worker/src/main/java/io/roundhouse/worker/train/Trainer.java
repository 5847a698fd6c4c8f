package io.roundhouse.worker.train;

import io.roundhouse.comms.Collectives;
import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.Backends;
import io.roundhouse.worker.checkpoint.CheckpointStore;
import io.roundhouse.worker.config.ConfigKeys;
import io.roundhouse.worker.config.JobConfig;
import io.roundhouse.worker.data.DataSplits;
import io.roundhouse.worker.data.Examples;
import io.roundhouse.worker.model.BackendCheck;
import io.roundhouse.worker.model.Model;
import io.roundhouse.worker.parallel.WorkerGroup;
import io.roundhouse.worker.robust.AdversarialSpec;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.function.Function;

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
 *
 * <p>The configuration is resolved once into a {@link RunContext}. The parts: {@link Preflight}
 * (the checks before anything runs), {@link TrainingData} (this worker's splits), {@link RunOutput}
 * (the run directory, the metrics and the run's console lines), {@link StepLoop} (the steps, with
 * {@link StepSums}, {@link Evaluator}, {@link RunCheckpoints} and {@link StnTuner}). At the end
 * rank 0 leaves the model's export in its run directory (see {@link RunOutput#export}).
 */
public final class Trainer {
    private final RunContext context;    // the config, resolved once
    private final PrintStream console;
    private final Collectives comms;
    private final Path givenRunDir;
    private final MetricsSink remote;
    private String gpu;                  // this worker's GPU address, or null
    private DataSplits data;             // given data, or null: read data.dir
    private boolean partitioned;         // data is this worker's part only
    private Function<String, CheckpointStore> checkpointStores = CheckpointStore::local;

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
        this.context = RunContext.of(config);
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
    public Trainer withCheckpointStores(Function<String, CheckpointStore> stores) {
        this.checkpointStores = stores;
        return this;
    }

    /** Checks everything that can be checked without training; writes nothing. */
    public void preflight() {
        Preflight.check(context, data != null);
    }

    /** {@link #preflight}, for a run of its own or the launcher's (not the Spark job): writes nothing. */
    public void preflightStandalone() {
        preflight();
        Preflight.sparkOnly(context, data != null);
    }

    /** Trains: preflight, the data, the model, the run directory, the step loop, the final evaluation. */
    public Result run() throws IOException {
        preflight();
        Preflight.sparkOnly(context, this.data != null);
        DataSplits data = this.data != null ? this.data : context.kind().loadLocal(context.config());
        Preflight.groupMatches(context, comms);
        TrainingData sets = TrainingData.of(context, data, partitioned, comms);
        try (Backend be = Backends.create(context.backend(), gpu, BackendCheck::differences)) {
            if (be instanceof io.roundhouse.kernels.cuda.CudaBackend cuda) {
                cuda.syncEveryKernel(context.config().get(ConfigKeys.BACKEND_CUDA_SYNC).equals("on"));
            }
            return train(be, sets);
        }
    }

    private Result train(Backend be, TrainingData sets) throws IOException {
        if (comms != null) {
            comms.startBarrier();  // every worker has its data and backend: from here on, comms.timeoutMs
        }
        WorkerGroup group = comms == null ? WorkerGroup.single(context.experts())
                : WorkerGroup.of(comms, context.experts());
        int batch = context.batchSize();
        int workers = group.size();
        int maxN = (batch + workers - 1) / workers;
        if (AdversarialSpec.from(context.config()).on()) {
            maxN = AdversarialStep.rowsFor(maxN);  // the clean shard and its adversarial copies in one forward
        }
        for (Examples set : new Examples[] {sets.validation(), sets.test()}) {
            if (set != null) {
                maxN = Math.max(maxN, Evaluator.maxRows(set, context.evalBatch(), workers, sets.partitioned()));
            }
        }
        Model model = context.kind().build(context.config(), be, sets.train().shape(), context.seed(), maxN,
                (b, rows) -> group.exchange(be, context.modelDim(), rows));
        AdamW opt = context.optimizer().adamW(be, model.params());
        int stepsPerEpoch = sets.stepsPerEpoch(group, batch);
        LrSchedule lr = context.schedule().over(context.totalSteps(stepsPerEpoch));

        // The model is built: only now does the run get a directory (rank 0 writes it).
        RunOutput output = RunOutput.open(context, group.rank(), givenRunDir, remote, console);
        Result result;
        StepLoop loop = new StepLoop(context, output, be, group, model, opt, lr, sets, stepsPerEpoch, gpu,
                checkpointStores, remote);
        try (output; loop) {
            result = loop.run();
        }
        output.report();
        output.export(model, group.size(), loop.finalCheckpoint(), checkpointStores);
        return result;
    }
}
