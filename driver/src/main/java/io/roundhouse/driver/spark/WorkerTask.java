package io.roundhouse.driver.spark;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.roundhouse.comms.CommsConfig;
import io.roundhouse.comms.ControlChannel;
import io.roundhouse.comms.EmbeddedMediaDriver;
import io.roundhouse.driver.JobComms;
import io.roundhouse.driver.RoundhouseCli;
import io.roundhouse.worker.checkpoint.Checkpointer;
import io.roundhouse.worker.config.ConfigException;
import io.roundhouse.worker.config.ConfigKeys;
import io.roundhouse.worker.config.JobConfig;
import io.roundhouse.worker.data.DataSplits;
import io.roundhouse.worker.train.ModelKind;
import io.roundhouse.worker.train.MetricsSink;
import io.roundhouse.worker.train.MetricsWriter;
import io.roundhouse.worker.train.Trainer;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.BarrierTaskContext;
import org.apache.spark.SparkEnv;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.deploy.SparkHadoopUtil;
import scala.collection.Iterator;
import scala.jdk.javaapi.CollectionConverters;
import scala.runtime.AbstractFunction1;

/**
 * One worker as a task of the barrier stage: learns its rank and the group's endpoints through
 * {@link BarrierTaskContext#allGather}, joins the group (Aeron directory and job key per stage
 * attempt, so a retried stage never meets the old one's files), trains, and returns its result as
 * JSON. Rank 0 streams every metrics record to the driver's control endpoint. A failure is thrown,
 * never swallowed: the stage must fail so that Spark retries it.
 */
final class WorkerTask extends AbstractFunction1<Iterator<Integer>, Iterator<String>> implements Serializable {
    private static final long serialVersionUID = 1L;
    private static final ObjectMapper JSON = new ObjectMapper();
    private final Map<String, String> config;
    private final long token;
    private final String driverEndpoint;
    private final String appKey;
    private final Broadcast<DataSplits> data;

    WorkerTask(Map<String, String> config, long token, String driverEndpoint, String appKey,
               Broadcast<DataSplits> data) {
        this.data = data;
        this.config = new LinkedHashMap<>(config);
        this.token = token;
        this.driverEndpoint = driverEndpoint;
        this.appKey = appKey;
    }

    @Override
    public Iterator<String> apply(Iterator<Integer> partition) {
        if (data == null) {  // a language model: this executor reads the text
            JobConfig job = JobConfig.of(config);
            Configuration hadoop = SparkHadoopUtil.get().newConfiguration(SparkEnv.get().conf());
            return run(ModelKind.corpus(job, HadoopText.read(job.get(ConfigKeys.DATA_TEXT), hadoop)), false);
        }
        return run(data.value(), false);
    }

    /**
     * Runs this task's worker on {@code splits}: the whole data set (broadcast), or with
     * {@code partitioned} this task's part of it.
     */
    Iterator<String> run(DataSplits splits, boolean partitioned) {
        BarrierTaskContext ctx = BarrierTaskContext.get();
        Configuration hadoop = SparkHadoopUtil.get().newConfiguration(SparkEnv.get().conf());
        Map<String, String> settings = new LinkedHashMap<>(config);
        String checkpoints = settings.getOrDefault(ConfigKeys.CHECKPOINT_DIR.name(), "");
        if (ctx.stageAttemptNumber() > 0 && !checkpoints.isEmpty() && latestCheckpoint(checkpoints, hadoop)) {
            // A retried stage continues from the last complete checkpoint of the failed attempt.
            settings.put(ConfigKeys.TRAIN_RESUME.name(), checkpoints);
        }
        JobConfig job = JobConfig.of(settings);
        CommsConfig cfg = JobComms.config(job, token);
        int rank = ctx.partitionId();
        Trainer.Result result;
        long[] controlNanos = new long[2];  // rank 0: time spent sending records to the driver, and how many
        try (BarrierGroup group = BarrierGroup.join(ctx, cfg, appKey);
             DriverReport report = rank == 0 ? new DriverReport(group.driver, group.host, group.workers, controlNanos,
                     ctx.stageAttemptNumber() == 0 ? job.get(ConfigKeys.FAULT_FAIL_AT_STEP) : 0) : null) {
            // The driver shows progress; a worker's own console would repeat it (in local mode on the same stdout).
            PrintStream quiet = new PrintStream(OutputStream.nullOutputStream());
            Trainer trainer = new Trainer(job, quiet, group.collectives(), null, report)
                    .withCheckpointStores(dir -> new HadoopCheckpointStore(dir, hadoop))
                    .withGpu(gpuOf(ctx));
            result = (partitioned ? trainer.withPartition(splits) : trainer.withData(splits)).run();
        } catch (IOException e) {
            throw new UncheckedIOException("worker " + rank + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            if (RoundhouseCli.isUserError(e)) {
                // The user's error, not a bug: Spark logs a failed task's trace, which says nothing
                // here (the driver reports the message; see TaskFailures).
                for (Throwable t = e; t != null; t = t.getCause()) {
                    t.setStackTrace(new StackTraceElement[0]);
                }
            }
            throw e;
        }
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("rank", rank);
        r.put("controlNanos", controlNanos[0]);
        r.put("controlMessages", controlNanos[1]);
        r.put("steps", result.steps());
        r.put("testAccuracy", result.testAccuracy());
        r.put("parameterDigest", result.parameterDigest());
        return CollectionConverters.asScala(List.of(MetricsWriter.toJson(r)).iterator());
    }

    /** Rank 0's records to the driver: one JSON string per control message. */
    private final class DriverReport implements MetricsSink {
        private final ControlChannel channel;
        private final long[] cost;

        private final int failAtStep;
        private final long timeoutMs;

        DriverReport(EmbeddedMediaDriver driver, String host, int workers, long[] cost, int failAtStep) {
            this.cost = cost;
            this.failAtStep = failAtStep;
            this.timeoutMs = JobConfig.of(config).get(ConfigKeys.COMMS_TIMEOUT_MS);
            CommsConfig control = SparkJob.controlConfig(token, JobComms.config(JobConfig.of(config), token));
            List<String> eps = new ArrayList<>();
            eps.add(driverEndpoint);
            for (int r = 0; r < workers; r++) {
                eps.add(host + ":0");  // where rank 0 listens: an ephemeral port, told to the driver in the hello
            }
            channel = new ControlChannel(control, driver, 1, eps, SparkJob.codec(), SparkJob.CONTROL_MAX_BYTES);
            channel.connect();
            // Tell the driver where rank 0 listens, so it can send commands (checkpoint, stop).
            long deadline = System.nanoTime() + control.connectTimeoutMs() * 1_000_000L;
            String mine = channel.resolvedEndpoint();
            while (mine == null && System.nanoTime() < deadline) {
                Thread.onSpinWait();
                mine = channel.resolvedEndpoint();
            }
            if (mine == null) {
                throw new IllegalStateException("worker 0: its control endpoint on " + host + " did not resolve");
            }
            Map<String, Object> hello = new LinkedHashMap<>();
            hello.put("type", "hello");
            hello.put("endpoint", mine);
            channel.send(0, MetricsWriter.toJson(hello));
        }

        @Override
        public int pollCommand() {
            int[] command = {NONE};
            channel.poll((from, message) -> {
                String c = command(message);
                if (c.equals("stop")) {
                    command[0] = STOP;
                } else if (c.equals("checkpoint") && command[0] == NONE) {
                    command[0] = CHECKPOINT;
                }
            }, 16);
            return command[0];
        }

        @Override
        public void write(Map<String, Object> record) {
            if (failAtStep > 0 && "train".equals(record.get("type")) && Integer.valueOf(failAtStep).equals(record.get("step"))) {
                throw new IllegalStateException("worker 0: failing at step " + failAtStep + " as "
                        + ConfigKeys.FAULT_FAIL_AT_STEP.name() + " asks (fault injection, stage attempt 0 only)");
            }
            long t0 = System.nanoTime();
            channel.send(0, MetricsWriter.toJson(record));
            cost[0] += System.nanoTime() - t0;
            cost[1]++;
        }

        @Override
        public void writeStep(int step, CharSequence json) {
            if (failAtStep > 0 && step == failAtStep) {
                throw new IllegalStateException("worker 0: failing at step " + failAtStep + " as "
                        + ConfigKeys.FAULT_FAIL_AT_STEP.name() + " asks (fault injection, stage attempt 0 only)");
            }
            long t0 = System.nanoTime();
            channel.send(0, json.toString());
            cost[0] += System.nanoTime() - t0;
            cost[1]++;
        }

        @Override
        public void flush() {
            // every record is sent as it is written
        }

        /**
         * The summary, then a wait for the driver's acknowledgement: a sent message is only in this
         * JVM's log buffer, and the task ending would close the publication before it left.
         */
        @Override
        public void summary(Map<String, Object> summary) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("type", "summary");
            m.putAll(summary);
            write(m);
            awaitAck("summary");
        }

        /** The driver commits every checkpoint: it writes the manifest once rank 0 says all shards are in. */
        @Override
        public Checkpointer.Committer checkpointCommitter() {
            return (dir, manifest) -> {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("type", "manifest");
                m.put("dir", dir);
                m.put("manifest", JSON.readTree(manifest));
                long t0 = System.nanoTime();
                channel.send(0, MetricsWriter.toJson(m));
                cost[0] += System.nanoTime() - t0;
                awaitAck("manifest");
            };
        }

        private void awaitAck(String what) {
            long deadline = System.nanoTime() + timeoutMs * 1_000_000L;
            boolean[] acked = {false};
            while (!acked[0]) {
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("worker 0: the driver did not acknowledge the " + what + " within "
                            + timeoutMs + " ms (comms.timeoutMs)");
                }
                if (channel.poll((from, message) -> acked[0] |= command(message).equals("ack:" + what), 16) == 0) {
                    Thread.onSpinWait();
                }
            }
        }

        private String command(Object message) {
            try {
                JsonNode c = JSON.readTree((String) message);
                String name = c.path("command").asText();
                return name.equals("ack") ? "ack:" + c.path("for").asText() : name;
            } catch (IOException e) {
                throw new IllegalStateException("worker 0: an unreadable message from the driver: " + message, e);
            }
        }

        @Override
        public void close() {
            channel.close();
        }
    }

    /** The task's GPU (Spark resource {@code gpu}, e.g. {@code spark.task.resource.gpu.amount=1}), or null. */
    private static String gpuOf(BarrierTaskContext ctx) {
        org.apache.spark.resource.ResourceInformation gpu = ctx.resources().get("gpu").getOrElse(() -> null);
        if (gpu == null || gpu.addresses().length == 0) {
            return null;
        }
        if (gpu.addresses().length > 1) {
            throw new ConfigException("a worker drives one GPU, but this task was given " + gpu.addresses().length
                    + " (" + String.join(", ", gpu.addresses()) + "); set spark.task.resource.gpu.amount=1");
        }
        return gpu.addresses()[0];
    }

    private static boolean latestCheckpoint(String dir, Configuration hadoop) {
        try {
            return Checkpointer.latestComplete(new HadoopCheckpointStore(dir, hadoop)) != null;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot look for checkpoints in " + dir + ": " + e.getMessage(), e);
        }
    }
}
