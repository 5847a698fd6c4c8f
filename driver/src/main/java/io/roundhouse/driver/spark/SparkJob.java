package io.roundhouse.driver.spark;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.roundhouse.comms.CommsConfig;
import io.roundhouse.comms.ControlChannel;
import io.roundhouse.comms.ControlCodec;
import io.roundhouse.comms.EmbeddedMediaDriver;
import io.roundhouse.comms.Transport;
import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.Backends;
import io.roundhouse.worker.UserException;
import io.roundhouse.worker.checkpoint.CheckpointStore;
import io.roundhouse.worker.checkpoint.Checkpointer;
import io.roundhouse.worker.config.ConfigException;
import io.roundhouse.worker.config.ConfigKeys;
import io.roundhouse.worker.config.JobConfig;
import io.roundhouse.worker.data.DataSplits;
import io.roundhouse.worker.data.LabeledData;
import io.roundhouse.worker.export.ModelExport;
import io.roundhouse.worker.model.Objective;
import io.roundhouse.worker.train.ModelKind;
import io.roundhouse.worker.data.FashionMnist;
import io.roundhouse.worker.train.RunCheckpoints;
import io.roundhouse.worker.train.RunFiles;
import io.roundhouse.worker.train.Trainer;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.PrintWriter;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Function;
import java.util.stream.IntStream;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkContext;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.rdd.RDD;
import org.apache.spark.sql.SparkSession;
import scala.reflect.ClassTag;
import scala.reflect.ClassTag$;

/**
 * The Spark application: W workers as the tasks of one barrier stage, each running the trainer
 * with its rank (see {@link WorkerTask}); the driver owns the run directory and follows the run
 * live through a control endpoint (Aeron UDP on the driver's host, its address in the task
 * closure): rank 0 reports every metrics record, which the driver writes to {@code metrics.jsonl}
 * and shows as progress lines. The barrier stage is followed by a shuffle so that a failed task
 * makes Spark re-run the whole stage (a barrier result stage would abort the job instead).
 *
 * <p>When the stage is done the driver loads the checkpoint of the final step (from wherever the
 * executors wrote it: any file system Hadoop reaches) and writes the model's export into the run
 * directory.
 *
 * <p>Without a master from {@code spark-submit} it runs on an embedded {@code local[W]}.
 */
public final class SparkJob {
    /** Largest control message (a metrics record is about 1–2 KB of JSON). */
    static final int CONTROL_MAX_BYTES = 256 * 1024;

    private final JobConfig config;
    private final PrintWriter out;
    private long started;

    public SparkJob(JobConfig config, PrintWriter out) {
        this.config = config;
        this.out = out;
    }

    /** The control messages: JSON records as strings. */
    static ControlCodec codec() {
        return new ControlCodec(CONTROL_MAX_BYTES, List.of());
    }

    /** The control channel always runs over UDP: the driver is a separate JVM, often another host. */
    static CommsConfig controlConfig(long token, CommsConfig data) {
        // Its messages (up to CONTROL_MAX_BYTES) must fit in an eighth of a term.
        int term = Math.max(data.termLengthBytes(), Integer.highestOneBit(CONTROL_MAX_BYTES * 8 - 1) << 1);
        CommsConfig c = CommsConfig.defaults(Transport.UDP, token);
        return c.withTimeouts(data.connectTimeoutMs(), data.opTimeoutMs()).withAeronDirBase(data.aeronDirBase())
                .withTerm(term, c.mtuBytes());
    }

    /** Runs the job on the session {@code spark-submit} configured, or on an embedded {@code local[W]}. */
    public Trainer.Result run() throws IOException {
        started = System.nanoTime();
        int w = config.get(ConfigKeys.WORKERS);
        new Trainer(config, new java.io.PrintStream(java.io.OutputStream.nullOutputStream())).preflight();
        SparkSession spark = session("roundhouse", w);
        try {
            return run(spark.sparkContext());
        } finally {
            spark.stop();
        }
    }

    /**
     * The Spark session {@code spark-submit} configured, or an embedded {@code local[threads]}, set
     * up for Roundhouse's barrier stages: executors may host Aeron, run BLAS on the cores a task
     * has, and the barrier slot check retries while executors register.
     */
    public static SparkSession session(String appName, int localThreads) {
        SparkConf conf = new SparkConf().setAppName(appName);
        // Executors host Aeron (Agrona needs jdk.internal.misc) and copy through java.nio buffers.
        conf.setIfMissing("spark.executor.extraJavaOptions",
                "--add-exports java.base/jdk.internal.misc=ALL-UNNAMED --add-opens java.base/java.nio=ALL-UNNAMED");
        // An executor's BLAS threads match the cores its task has, so workers never oversubscribe a host.
        conf.setIfMissing("spark.executorEnv.OPENBLAS_NUM_THREADS", conf.get("spark.task.cpus", "1"));
        if (!conf.contains("spark.master")) {
            conf.setMaster("local[" + localThreads + "]");
            conf.setIfMissing("spark.ui.enabled", "false");
        }
        // Executors register after the context starts; the barrier stage's slot check then retries
        // every second (Spark's default waits 15 s between checks) for up to a minute.
        conf.setIfMissing("spark.scheduler.barrier.maxConcurrentTasksCheck.interval", "1s");
        conf.setIfMissing("spark.scheduler.barrier.maxConcurrentTasksCheck.maxFailures", "60");
        return SparkSession.builder().config(conf).getOrCreate();
    }

    /** Runs the job on {@code sc}. */
    public Trainer.Result run(SparkContext sc) throws IOException {
        if (started == 0) {
            started = System.nanoTime();
        }
        int w = config.get(ConfigKeys.WORKERS);
        checkCluster(sc, w);
        // The data first: a data error leaves nothing behind.
        // A language model's text is read by the executors: the driver checks that the path names some.
        boolean text = ModelKind.of(config) == ModelKind.LANGUAGE_MODEL;
        String textSource = text ? HadoopText.describe(config.get(ConfigKeys.DATA_TEXT), sc.hadoopConfiguration())
                : null;
        DataSplits data = text ? null : config.get(ConfigKeys.DATA_FORMAT).equals("parquet")
                ? ParquetData.load(SparkSession.builder().sparkContext(sc).getOrCreate(), config.get(ConfigKeys.DATA_DIR))
                : FashionMnist.load(Path.of(config.get(ConfigKeys.DATA_DIR)));
        if (!config.get(ConfigKeys.CHECKPOINT_DIR).isEmpty()) {
            new HadoopCheckpointStore(config.get(ConfigKeys.CHECKPOINT_DIR), sc.hadoopConfiguration());  // has a file system
        }
        // A checkpoint that cannot be resumed is refused here, once, not in every task of every attempt.
        RunCheckpoints.verifyResume(config, data == null ? null : data.train().shape(),
                dir -> new HadoopCheckpointStore(dir, sc.hadoopConfiguration()));
        Path runDir = RunFiles.createRunDir(Path.of(config.get(ConfigKeys.OUTPUT_DIR)));
        RunFiles.writeAtomically(runDir.resolve("config.conf"), config.describe());
        out.printf("spark: %d workers as a barrier stage on %s (application %s); run directory %s%n", w, sc.master(),
                sc.applicationId(), runDir);
        out.flush();

        long token = CommsConfig.randomSessionToken();
        CommsConfig control = controlConfig(token, io.roundhouse.driver.JobComms.config(config, token));
        String host = sc.getConf().get("spark.driver.host", InetAddress.getLoopbackAddress().getHostAddress());
        String endpoint = host + ":" + freePort(host);
        String appKey = "spark-" + sc.applicationId().replaceAll("[^A-Za-z0-9._-]", "_");
        // The job's Spark jobs, to cancel them by group: SparkContext.cancelAllJobs forgets a job whose
        // only stage awaits resubmission (a failed barrier stage) without failing it, and collect() then
        // never returns.
        String jobGroup = "roundhouse-" + appKey + "-" + token;
        try (EmbeddedMediaDriver driver = EmbeddedMediaDriver.acquire(control, appKey + "-driver", 1, w + 1, 0);
             ControlChannel channel = ControlChannel.listeningCoordinator(control, driver, endpoint, w, codec(),
                     CONTROL_MAX_BYTES);
             Progress progress = new Progress(runDir, config.get(ConfigKeys.LOG_EVERY_STEPS), out, started,
                     text ? Objective.BITS_PER_BYTE : Objective.ACCURACY)) {
            AtomicBoolean done = new AtomicBoolean();
            AtomicReference<RuntimeException> failed = new AtomicReference<>();
            Thread monitor = new Thread(() -> {
                try {
                    long nextLook = 0;
                    while (!done.get()) {
                        if (channel.poll((party, message) -> progress.accept(channel, (String) message), 64) == 0) {
                            Thread.onSpinWait();
                            Thread.sleep(1);
                        }
                        if (System.nanoTime() > nextLook) {
                            progress.forwardRequests(channel);
                            nextLook = System.nanoTime() + 200_000_000L;
                        }
                    }
                    while (channel.poll((party, message) -> progress.accept(channel, (String) message), 64) > 0) {
                        // drain what arrived before the stage ended
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                } catch (RuntimeException e) {
                    // The driver can no longer follow the run (e.g. a manifest it cannot write): stop the job
                    // rather than let the workers wait for acknowledgements that will not come.
                    failed.set(e);
                    sc.cancelJobGroup(jobGroup);
                }
            }, "roundhouse-driver-control");
            monitor.setDaemon(true);
            monitor.start();
            List<String> results;
            String checkpointDir;  // where the executors write the run's checkpoints
            TaskFailures taskFailures = new TaskFailures(sc, jobGroup);
            sc.addSparkListener(taskFailures);
            // As long as Spark's barrier slot check waits at a job's start (a minute by default here).
            long slotGraceMs = sc.getConf().getTimeAsMs("spark.scheduler.barrier.maxConcurrentTasksCheck.interval", "15s")
                    * sc.getConf().getInt("spark.scheduler.barrier.maxConcurrentTasksCheck.maxFailures", 40);
            String checkpoints = config.get(ConfigKeys.CHECKPOINT_DIR).isEmpty()
                    ? runDir.resolve("checkpoints").toString() : config.get(ConfigKeys.CHECKPOINT_DIR);
            SlotWatch slots = new SlotWatch(w, slotGraceMs, "run the job again with --resume " + checkpoints, e -> {
                failed.compareAndSet(null, e);
                sc.cancelJobGroup(jobGroup);
            });
            sc.addSparkListener(slots);
            sc.setJobGroup(jobGroup, "roundhouse " + runDir.getFileName(), false);
            try {
                java.util.Map<String, String> taskConfig = new java.util.LinkedHashMap<>(config.asMap());
                if (config.get(ConfigKeys.CHECKPOINT_DIR).isEmpty()) {
                    // Rank 0 runs in an executor: tell every worker where the run's checkpoints go.
                    taskConfig.put(ConfigKeys.CHECKPOINT_DIR.name(),
                            runDir.resolve("checkpoints").toAbsolutePath().toUri().toString());
                }
                // The driver reads the data once; executors need no copy of data.dir.
                boolean partitioned = !text && config.get(ConfigKeys.DATA_DISTRIBUTION).equals("partitioned");
                Broadcast<DataSplits> shared = partitioned || text ? null : new JavaSparkContext(sc).broadcast(data);
                if (text) {
                    out.printf("data: %s: %s%n", config.get(ConfigKeys.DATA_TEXT), textSource);
                } else {
                    LabeledData train = (LabeledData) data.train();
                    out.printf("data: %,d training and %,d test examples (%d features, %d classes) read from %s, %s%n",
                            train.size(), data.test().size(), train.features(), train.classes(),
                            config.get(ConfigKeys.DATA_DIR), partitioned ? "repartitioned to the " + w + " workers"
                                    : "broadcast to the executors");
                }
                checkpointDir = taskConfig.get(ConfigKeys.CHECKPOINT_DIR.name());
                if (!checkpointDir.isEmpty()) {
                    progress.checkpointsAt(new HadoopCheckpointStore(checkpointDir, sc.hadoopConfiguration()),
                            config.get(ConfigKeys.CHECKPOINT_KEEP));
                }
                WorkerTask task = new WorkerTask(taskConfig, token, endpoint, appKey, shared);
                ClassTag<String> strings = ClassTag$.MODULE$.apply(String.class);
                // The shuffle after the barrier stage: a failed task re-runs the stage instead of aborting the job.
                if (partitioned) {
                    RDD<PartitionTask.Example> parts = new JavaSparkContext(sc).parallelize(examples(data), w)
                            .repartition(w).rdd();
                    LabeledData train = (LabeledData) data.train();
                    results = parts.barrier().mapPartitions(new PartitionTask(task, train.features(),
                            train.classes()), false, strings).toJavaRDD().repartition(1).collect();
                } else {
                    RDD<Integer> ranks = new JavaSparkContext(sc)
                            .parallelize(IntStream.range(0, w).boxed().toList(), w).rdd();
                    results = ranks.barrier().mapPartitions(task, false, strings).toJavaRDD().repartition(1).collect();
                }
            } catch (Exception e) {  // collect() throws SparkException, a checked exception, unchecked
                RuntimeException cause = failed.get();
                if (cause != null) {  // the job was cancelled because the driver failed: say why
                    cause.addSuppressed(e);
                    throw cause;
                }
                throw taskFailures.explain(e);
            } finally {
                sc.clearJobGroup();
                sc.removeSparkListener(taskFailures);
                sc.removeSparkListener(slots);
                slots.close();
                done.set(true);
                try {
                    monitor.join(10_000);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            if (failed.get() != null) {
                throw failed.get();
            }
            Trainer.Result result = progress.result(runDir, results);
            progress.export(checkpointDir, dir -> new HadoopCheckpointStore(dir, sc.hadoopConfiguration()));
            return result;
        }
    }

    /** Every example, features as the model reads them, for repartitioning. */
    private static List<PartitionTask.Example> examples(DataSplits data) {
        List<PartitionTask.Example> out = new ArrayList<>(data.train().size() + data.test().size());
        for (LabeledData set : List.of((LabeledData) data.train(), (LabeledData) data.test())) {
            for (int i = 0; i < set.size(); i++) {
                float[] x = new float[set.features()];
                set.features(i, x, 0);
                out.add(new PartitionTask.Example(set == data.test(), set.label(i), x));
            }
        }
        return out;
    }

    /** Fails before submitting when the cluster cannot run W tasks at once. */
    void checkCluster(SparkContext sc, int w) {
        if (!sc.isLocal() && config.get(ConfigKeys.CHECKPOINT_EVERY_STEPS) > 0
                && config.get(ConfigKeys.CHECKPOINT_DIR).isEmpty()) {
            throw new ConfigException("checkpoint.dir is empty, and on " + sc.master() + " the executors cannot write "
                    + "into the driver's run directory; set checkpoint.dir to storage every executor reaches "
                    + "(hdfs://..., s3a://...), or checkpoint.everySteps = 0");
        }
        if (sc.getConf().getBoolean("spark.dynamicAllocation.enabled", false)) {
            throw new ConfigException("spark.dynamicAllocation.enabled = true: a barrier stage needs all " + w
                    + " workers at once; set spark.dynamicAllocation.enabled=false");
        }
        // A local master's parallelism is its thread count; a cluster's counts only the executors
        // registered so far, so there Spark's barrier slot check decides (and names the shortfall).
        int slots = sc.defaultParallelism();
        if (sc.isLocal() && slots < w) {
            throw new ConfigException("workers = " + w + " but the cluster has " + slots + " task slots ("
                    + sc.master() + "); lower workers or give Spark more executors or cores");
        }
    }

    /** A UDP port free on {@code host} now (the driver's control endpoint, a task's member endpoint). */
    static int freePort(String host) {
        try (DatagramSocket s = new DatagramSocket(0, InetAddress.getByName(host))) {
            return s.getLocalPort();
        } catch (IOException e) {
            throw new UserException(UserException.USAGE, "cannot open a UDP port on " + host + " (" + e.getMessage()
                    + "): it must be an address of this machine (for the driver: spark.driver.host)", e);
        }
    }

    /** Writes rank 0's records as they come and prints a progress line every few steps. */
    private static final class Progress implements AutoCloseable {
        private final ObjectMapper json = new ObjectMapper();
        private final BufferedWriter metrics;
        private final Path runDir;
        private final int every;
        private final PrintWriter out;
        private final long started;
        private JsonNode summary;
        private int lastHyperLine;
        private String lastEvalSplit;  // the last evaluation printed, and its step
        private int lastEvalStep;
        private double firstStepSeconds = Double.NaN;
        private boolean rank0Attached;
        private final io.roundhouse.worker.train.Eta eta = new io.roundhouse.worker.train.Eta();
        private CheckpointStore checkpoints;
        private int keep;
        private String lastCommitted;     // the step folder of the last checkpoint committed, or null
        private int lastCommittedStep;
        private final Objective objective;

        /** Where this run's checkpoints live (the driver writes their manifests). */
        void checkpointsAt(CheckpointStore store, int keepNewest) {
            this.checkpoints = store;
            this.keep = keepNewest;
        }

        Progress(Path runDir, int every, PrintWriter out, long started, Objective objective) throws IOException {
            this.objective = objective;
            this.started = started;
            this.runDir = runDir;
            try {
                this.metrics = Files.newBufferedWriter(runDir.resolve("metrics.jsonl"), StandardCharsets.UTF_8);
            } catch (IOException e) {
                throw UserException.cannotWrite(runDir.resolve("metrics.jsonl"), e);
            }
            this.every = every;
            this.out = out;
        }

        void accept(ControlChannel channel, String record) {
            try {
                JsonNode r = json.readTree(record);
                String type = r.path("type").asText();
                if (type.equals("hello")) {
                    channel.attach(1, r.path("endpoint").asText());
                    rank0Attached = true;
                    return;
                }
                if (type.equals("manifest") && checkpoints == null) {
                    throw new IllegalStateException("rank 0 committed a checkpoint but the job has no checkpoint.dir");
                }
                if (type.equals("manifest")) {
                    // The driver is the commit point: rank 0 waits for this before training on.
                    Checkpointer.commit(checkpoints, r.path("dir").asText(),
                            json.writerWithDefaultPrettyPrinter().writeValueAsBytes(r.path("manifest")), keep);
                    lastCommitted = r.path("dir").asText();
                    lastCommittedStep = r.path("manifest").path("step").asInt();
                    channel.send(1, "{\"command\":\"ack\",\"for\":\"manifest\"}");
                    return;
                }
                if (type.equals("summary")) {
                    channel.send(1, "{\"command\":\"ack\",\"for\":\"summary\"}");  // rank 0 waits for this before its task ends
                    summary = r;
                    ((com.fasterxml.jackson.databind.node.ObjectNode) r).remove("type");
                    RunFiles.writeAtomically(runDir.resolve("summary.json"),
                            json.writerWithDefaultPrettyPrinter().writeValueAsString(r) + "\n");
                    return;
                }
                metrics.write(record);
                metrics.newLine();
                if (type.equals("placement")) {
                    JsonNode gpus = r.path("gpuByWorker");
                    for (int w = 0; w < r.path("expertsByWorker").size(); w++) {
                        out.printf("  worker %d: experts %s%s%n", w, r.path("expertsByWorker").get(w),
                                gpus.isMissingNode() ? "" : ", GPU " + gpus.get(w).asText());
                    }
                    out.flush();
                }
                if (type.equals("hyper") && r.path("step").asInt() / every > lastHyperLine / every) {
                    lastHyperLine = r.path("step").asInt();  // one line per log.everySteps
                    out.printf("self-tuning: step %d, hyper step %d: %s%n", r.path("step").asInt(),
                            r.path("version").asInt(), r.path("lambda"));
                    out.flush();
                }
                if (type.equals("train") && Double.isNaN(firstStepSeconds)) {
                    firstStepSeconds = (System.nanoTime() - started) / 1e9;
                    out.printf("first step done %.1f s after the job started%n", firstStepSeconds);
                    out.flush();
                }
                if (type.equals("train")) {
                    eta.stepDone(r.path("step").asInt(), r.path("elapsedSeconds").asDouble());
                }
                if (type.equals("train") && r.path("step").asInt() % every == 0) {
                    metrics.flush();
                    int step = r.path("step").asInt();
                    int total = r.path("totalSteps").asInt(step);
                    out.printf("step %d/%d  loss %.4f  %s  %,.0f tok/s  comm %.0f%%  ETA %s%n", step, total,
                            r.path("loss").asDouble(), objective.format(r.path("crossEntropy").asDouble(),
                                    r.path("accuracy").asDouble()),
                            r.path("tokensPerSecond").asDouble(), 100 * r.path("commShare").asDouble(),
                            eta.format(total));
                    out.flush();
                } else if (type.equals("eval") && !r.has("epoch") && r.path("split").asText().equals(lastEvalSplit)
                        && r.path("step").asInt() == lastEvalStep) {
                    // The run's final figure is the last epoch's evaluation (a corpus's validation split): printed once.
                    lastEvalSplit = null;
                } else if (type.equals("eval")) {
                    lastEvalSplit = r.path("split").asText();
                    lastEvalStep = r.path("step").asInt();
                    out.printf(objective == Objective.ACCURACY ? "%s: loss %.4f  accuracy %.2f%%%n" : "%s: loss %.4f  %s%n",
                            r.path("split").asText(), r.path("crossEntropy").asDouble(),
                            objective == Objective.ACCURACY ? 100 * r.path("accuracy").asDouble()
                                    : objective.formatEval(r.path("crossEntropy").asDouble(), 0));
                    out.flush();
                }
            } catch (IOException e) {
                throw UserException.cannotWrite(runDir.resolve("metrics.jsonl"), e);
            }
        }

        /**
         * A file {@code STOP} or {@code CHECKPOINT} in the run directory asks the workers to
         * checkpoint (and stop) at their next step; the file is removed once the request is sent.
         */
        void forwardRequests(ControlChannel channel) {
            if (!rank0Attached) {
                return;
            }
            for (String request : new String[] {"STOP", "CHECKPOINT"}) {
                Path file = runDir.resolve(request);
                if (Files.exists(file)) {
                    channel.send(1, "{\"command\":\"" + request.toLowerCase(java.util.Locale.ROOT) + "\"}");
                    try {
                        Files.deleteIfExists(file);
                    } catch (IOException e) {
                        throw UserException.cannotWrite("the run directory (to remove " + file + ")", e);
                    }
                    out.printf("%s requested (%s): the workers %s at their next step%n", request.toLowerCase(
                            java.util.Locale.ROOT), file, request.equals("STOP") ? "checkpoint and stop" : "checkpoint");
                    out.flush();
                }
            }
        }

        Trainer.Result result(Path runDir, List<String> workerResults) throws IOException {
            if (summary == null) {
                throw new IllegalStateException("the workers finished but rank 0's summary never reached the driver");
            }
            List<String> digests = new ArrayList<>();
            for (String s : workerResults) {
                JsonNode r = json.readTree(s);
                digests.add(r.path("parameterDigest").asText());
                if (r.path("controlMessages").asLong() > 0) {
                    out.printf("control plane: rank 0 sent %d records to the driver, %.1f us each (%.3f%% of the "
                            + "training time)%n", r.path("controlMessages").asLong(),
                            r.path("controlNanos").asDouble() / 1e3 / r.path("controlMessages").asLong(),
                            100 * r.path("controlNanos").asDouble() / 1e9 / summary.path("wallSeconds").asDouble());
                }
            }
            if (digests.stream().distinct().count() != 1) {
                throw new IllegalStateException("the workers report different parameter digests: " + digests);
            }
            out.printf("parameter digest: %s%n", digests.get(0));
            if (summary.has("hyperparameters")) {
                out.printf("self-tuning: ended with %s%n", summary.path("hyperparameters"));
            }
            metrics.flush();
            try {
                out.printf("report: %s%n", io.roundhouse.worker.report.RunReport.writeFor(runDir));
            } catch (RuntimeException e) {
                out.printf("no report: %s (the run itself is complete; write the page with 'roundhouse report %s')%n",
                        e.getMessage(), runDir);
            }
            return Trainer.Result.of(runDir, summary);
        }

        /**
         * The run's export in the run directory, loaded here from the checkpoint committed of the
         * final step (the executors hold the model, the driver the run directory), and its line.
         *
         * @param checkpointDir the run's checkpoint folder as the executors named it (a Hadoop path)
         * @param stores        the checkpoint store of a Hadoop path (any file system Hadoop reaches)
         */
        void export(String checkpointDir, Function<String, CheckpointStore> stores) {
            int steps = summary.path("steps").asInt();
            out.println(ModelExport.forRun(runDir, export -> {
                if (lastCommitted == null || lastCommittedStep != steps) {
                    throw new UserException(UserException.USAGE, "a Spark run's export is loaded from the checkpoint "
                            + "of the final step (" + steps + "), and this run saved none (checkpoint.everySteps = 0); "
                            + "set checkpoint.everySteps, or run roundhouse export on a checkpoint");
                }
                try (Backend cpu = Backends.create("cpu")) {
                    ModelExport.run(cpu, checkpointDir + "/" + lastCommitted, stores, export);
                }
            }));
            out.flush();
        }

        @Override
        public void close() throws IOException {
            metrics.close();
        }
    }
}
