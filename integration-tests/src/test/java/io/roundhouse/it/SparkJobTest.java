package io.roundhouse.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.roundhouse.driver.RoundhouseCli;
import io.roundhouse.worker.IdxFixtures;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code roundhouse spark} on an embedded {@code local[2]}: two workers as a barrier stage, rank 0
 * reporting to the driver, which writes the run directory; the result equals the same job run by
 * the local launcher (same parameter digest).
 */
@Timeout(300)
class SparkJobTest {
    @TempDir
    Path tmp;

    private static int cli(StringWriter out, StringWriter err, String... args) {
        int code = RoundhouseCli.run(args, new PrintWriter(out, true), new PrintWriter(err, true));
        System.out.print(out);
        System.err.print(err);
        return code;
    }

    private static String[] args(String command, Path data, Path runs) {
        return new String[] {command, "data.dir=" + data, "output.dir=" + runs, "data.validationExamples=100",
            "model.dim=16", "model.experts=4", "model.expertHidden=16", "train.batchSize=40", "train.warmupSteps=5",
            "train.evalBatchSize=50", "log.everySteps=5", "backend=cpu", "workers=2", "train.maxSteps=15",
            "comms.timeoutMs=20000"};
    }

    /**
     * Rank 0 throws at step 12 in the stage's first attempt; Spark re-runs the barrier stage (the
     * shuffle after it makes that a stage retry, {@code local[2,4]} allows task failures), the new
     * attempt resumes from the step-8 checkpoint and ends with the parameters of a run that never
     * failed.
     */
    @Test
    void aFailedTaskMakesSparkRetryTheStageWhichResumesFromTheCheckpoint() throws Exception {
        Path data = IdxFixtures.write(tmp.resolve("data"), 600, 100, 6);
        String[] plain = args("spark", data, tmp.resolve("plain"));
        plain[13] = "train.maxSteps=20";
        String[] withCheckpoints = java.util.Arrays.copyOf(plain, plain.length + 1);
        withCheckpoints[plain.length] = "checkpoint.everySteps=8";
        assertEquals(0, cli(new StringWriter(), new StringWriter(), withCheckpoints));
        ObjectMapper json = new ObjectMapper();
        String uninterrupted = json.readTree(onlyRun(tmp.resolve("plain")).resolve("summary.json").toFile())
                .get("parameterDigest").asText();

        withCheckpoints[2] = "output.dir=" + tmp.resolve("failing");
        String[] failing = java.util.Arrays.copyOf(withCheckpoints, withCheckpoints.length + 1);
        failing[withCheckpoints.length] = "fault.failAtStep=12";
        System.setProperty("spark.master", "local[2,4]");
        StringWriter out = new StringWriter();
        try {
            assertEquals(0, cli(out, new StringWriter(), failing));
        } finally {
            System.clearProperty("spark.master");
        }
        Path run = onlyRun(tmp.resolve("failing"));
        List<String> resumes = Files.readAllLines(run.resolve("metrics.jsonl")).stream()
                .filter(l -> l.contains("\"type\":\"resume\"")).toList();
        assertEquals(1, resumes.size(), "the retried stage resumed once");
        assertTrue(resumes.get(0).contains("\"step\":8"), resumes.get(0));
        assertEquals(uninterrupted, json.readTree(run.resolve("summary.json").toFile()).get("parameterDigest").asText(),
                "after the failure and the retry: the parameters of the uninterrupted run");
    }

    /**
     * {@code local-cluster[2,1,1024]}: two executor JVMs launched by a local Spark worker, the
     * workers over UDP, checkpoints in a folder both reach; the same model as the launcher trains.
     */
    @Test
    void localClusterExecutorsInSeparateJvmsTrainTheSameModel() throws Exception {
        Files.createDirectories(Path.of(System.getenv("SPARK_HOME"), "jars"));
        Path data = IdxFixtures.write(tmp.resolve("data"), 600, 100, 6);
        String[] a = args("spark", data, tmp.resolve("cluster"));
        String[] more = java.util.Arrays.copyOf(a, a.length + 2);
        more[a.length] = "comms.transport=udp";
        more[a.length + 1] = "checkpoint.dir=" + tmp.resolve("cluster-checkpoints").toUri();
        // A GPU per executor and task, from a discovery script that reports a fake address.
        Path discover = tmp.resolve("discover-gpu.sh");
        Files.writeString(discover, "#!/bin/sh\necho '{\"name\": \"gpu\", \"addresses\": [\"7\"]}'\n");
        discover.toFile().setExecutable(true);
        java.util.Map<String, String> spark = java.util.Map.of("spark.master", "local-cluster[2,1,1024]",
                "spark.executor.extraClassPath", System.getProperty("java.class.path"),
                "spark.worker.resource.gpu.amount", "1",
                "spark.worker.resource.gpu.discoveryScript", discover.toString(),
                "spark.executor.resource.gpu.amount", "1",
                "spark.task.resource.gpu.amount", "1");
        spark.forEach(System::setProperty);
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        try {
            assertEquals(0, cli(out, err, more), err.toString());
        } finally {
            spark.keySet().forEach(System::clearProperty);
        }
        assertTrue(out.toString().contains("on local-cluster[2,1,1024]"), out.toString());
        JsonNode placement = new ObjectMapper().readTree(
                Files.readAllLines(onlyRun(tmp.resolve("cluster")).resolve("metrics.jsonl")).get(0));
        assertEquals("[\"7\",\"7\"]", placement.get("gpuByWorker").toString(),
                "each task read its GPU from TaskContext.resources()");
        ObjectMapper json = new ObjectMapper();
        String digest = json.readTree(onlyRun(tmp.resolve("cluster")).resolve("summary.json").toFile())
                .get("parameterDigest").asText();
        assertTrue(Files.exists(tmp.resolve("cluster-checkpoints/step-00000015/manifest.json")));
        // The driver exports the final checkpoint (written through Hadoop) into the run directory.
        Path clusterExport = onlyRun(tmp.resolve("cluster")).resolve("export").resolve("model.safetensors");
        assertTrue(out.toString().contains("export: " + clusterExport + " and config.json"), out.toString());
        StringWriter launcherOut = new StringWriter();
        assertEquals(0, cli(launcherOut, new StringWriter(), args("train", data, tmp.resolve("launcher"))));
        assertEquals(json.readTree(onlyRun(tmp.resolve("launcher")).resolve("summary.json").toFile())
                .get("parameterDigest").asText(), digest, "executor JVMs train the model the launcher's JVMs train");
        // The launcher's rank 0 exports its run's final checkpoint: the same model, the same bytes.
        Path launcherExport = onlyRun(tmp.resolve("launcher")).resolve("export").resolve("model.safetensors");
        assertTrue(launcherOut.toString().contains("export: " + launcherExport), launcherOut.toString());
        assertTrue(java.util.Arrays.equals(Files.readAllBytes(clusterExport), Files.readAllBytes(launcherExport)),
                "the Spark driver's and the launcher's exports of one model differ");
    }

    /**
     * An executor JVM SIGKILLed mid-run on {@code local-cluster}: the peer's exchange fails naming
     * it, Spark re-runs the barrier stage on a fresh executor, the workers resume from the last
     * checkpoint and finish with the parameters of a run that was never interrupted.
     */
    @Test
    void aKilledExecutorJvmIsSurvivedThroughTheCheckpoint() throws Exception {
        Files.createDirectories(Path.of(System.getenv("SPARK_HOME"), "jars"));
        Path data = IdxFixtures.write(tmp.resolve("data"), 600, 100, 6);
        String[] a = args("spark", data, tmp.resolve("killed"));
        a[13] = "train.maxSteps=600";
        a[14] = "comms.timeoutMs=5000";
        Path checkpoints = tmp.resolve("killed-checkpoints");
        String[] more = java.util.Arrays.copyOf(a, a.length + 4);
        more[a.length] = "comms.transport=udp";
        more[a.length + 1] = "checkpoint.dir=" + checkpoints.toUri();
        more[a.length + 2] = "checkpoint.everySteps=50";
        more[a.length + 3] = "train.epochs=100";
        System.setProperty("spark.master", "local-cluster[2,1,1024]");
        System.setProperty("spark.executor.extraClassPath", System.getProperty("java.class.path"));
        java.util.concurrent.CompletableFuture<Integer> job;
        StringWriter out = new StringWriter();
        try {
            job = java.util.concurrent.CompletableFuture.supplyAsync(() -> cli(out, new StringWriter(), more));
            long until = System.nanoTime() + 180_000_000_000L;
            while (!Files.exists(checkpoints.resolve("step-00000050/manifest.json"))) {
                assertTrue(System.nanoTime() < until && !job.isDone(), "the workers reach the first checkpoint");
                Thread.sleep(50);
            }
            // The executors are children of the local Spark worker, which runs in this JVM.
            ProcessHandle executor = ProcessHandle.current().descendants()
                    .filter(p -> commandLine(p).contains("CoarseGrainedExecutorBackend"))
                    .findFirst().orElseThrow(() -> new AssertionError("no executor JVM among this JVM's children"));
            executor.destroyForcibly();
            assertEquals(0, job.get(240, java.util.concurrent.TimeUnit.SECONDS), out.toString());
        } finally {
            System.clearProperty("spark.master");
            System.clearProperty("spark.executor.extraClassPath");
        }
        ObjectMapper json = new ObjectMapper();
        Path run = onlyRun(tmp.resolve("killed"));
        assertTrue(Files.readAllLines(run.resolve("metrics.jsonl")).stream().anyMatch(l -> l.contains("\"type\":\"resume\"")),
                "the retried stage resumed from a checkpoint");
        String[] plain = args("train", data, tmp.resolve("killed-plain"));
        plain[13] = "train.maxSteps=600";
        String[] plainMore = java.util.Arrays.copyOf(plain, plain.length + 2);
        plainMore[plain.length] = "checkpoint.everySteps=50";
        plainMore[plain.length + 1] = "train.epochs=100";
        assertEquals(0, cli(new StringWriter(), new StringWriter(), plainMore));
        assertEquals(json.readTree(onlyRun(tmp.resolve("killed-plain")).resolve("summary.json").toFile())
                .get("parameterDigest").asText(),
                json.readTree(run.resolve("summary.json").toFile()).get("parameterDigest").asText(),
                "after a killed executor: the parameters of the uninterrupted run");
    }

    /**
     * A {@code STOP} file in the run directory: the driver tells rank 0, which hands the request to
     * every worker in the step's all-reduce; they checkpoint at the same step and stop. Resuming
     * from that checkpoint ends where an uninterrupted run ends.
     */
    @Test
    void aStopFileCheckpointsAndStopsAndTheRunResumes() throws Exception {
        Path data = IdxFixtures.write(tmp.resolve("data"), 600, 100, 6);
        String[] a = args("spark", data, tmp.resolve("stopped"));
        a[13] = "train.maxSteps=600";
        String[] more = java.util.Arrays.copyOf(a, a.length + 2);
        more[a.length] = "checkpoint.everySteps=0";
        more[a.length + 1] = "train.epochs=100";
        StringWriter out = new StringWriter();
        java.util.concurrent.CompletableFuture<Integer> job =
                java.util.concurrent.CompletableFuture.supplyAsync(() -> cli(out, new StringWriter(), more));
        long until = System.nanoTime() + 120_000_000_000L;
        Path run = null;
        while (run == null) {
            assertTrue(System.nanoTime() < until && !job.isDone(), "the workers start training");
            Thread.sleep(20);
            if (Files.isDirectory(tmp.resolve("stopped"))) {
                Path r = onlyRun(tmp.resolve("stopped"));
                if (Files.exists(r.resolve("metrics.jsonl")) && Files.readAllLines(r.resolve("metrics.jsonl")).stream()
                        .filter(l -> l.contains("\"type\":\"train\"")).count() >= 20) {
                    run = r;
                }
            }
        }
        Files.writeString(run.resolve("STOP"), "");
        assertEquals(0, job.get(120, java.util.concurrent.TimeUnit.SECONDS));
        assertTrue(out.toString().contains("stop requested"), out.toString());
        ObjectMapper json = new ObjectMapper();
        JsonNode summary = json.readTree(run.resolve("summary.json").toFile());
        assertTrue(summary.get("stoppedEarly").asBoolean());
        int stoppedAt = summary.get("steps").asInt();
        assertTrue(stoppedAt >= 20 && stoppedAt < 600, "stopped at " + stoppedAt);
        Path checkpoint = run.resolve("checkpoints").resolve(String.format("step-%08d", stoppedAt));
        assertTrue(Files.exists(checkpoint.resolve("manifest.json")), "a checkpoint at the stop: " + checkpoint);

        String[] resume = java.util.Arrays.copyOf(more, more.length + 2);
        resume[2] = "output.dir=" + tmp.resolve("resumed");
        resume[more.length] = "--resume";
        resume[more.length + 1] = checkpoint.toString();
        assertEquals(0, cli(new StringWriter(), new StringWriter(), resume));
        String[] plain = java.util.Arrays.copyOf(more, more.length);
        plain[0] = "train";
        plain[2] = "output.dir=" + tmp.resolve("never-stopped");
        assertEquals(0, cli(new StringWriter(), new StringWriter(), plain));
        assertEquals(json.readTree(onlyRun(tmp.resolve("never-stopped")).resolve("summary.json").toFile())
                .get("parameterDigest").asText(),
                json.readTree(onlyRun(tmp.resolve("resumed")).resolve("summary.json").toFile()).get("parameterDigest").asText(),
                "stopped at step " + stoppedAt + " and resumed: the uninterrupted run's parameters");
    }

    /**
     * A user's own data as Parquet ({@code label} integers, {@code features} arrays): the driver
     * reads it with Spark, the workers learn it; a missing column is refused naming the file.
     */
    @Test
    void parquetDataOfYourOwn() throws Exception {
        Path dir = tmp.resolve("parquet");
        org.apache.spark.sql.SparkSession spark = org.apache.spark.sql.SparkSession.builder().master("local[1]")
                .config("spark.ui.enabled", "false").getOrCreate();
        try {
            java.util.Random rnd = new java.util.Random(3);
            for (String split : new String[] {"train", "test"}) {
                List<org.apache.spark.sql.Row> rows = new java.util.ArrayList<>();
                for (int i = 0; i < (split.equals("train") ? 500 : 120); i++) {
                    int label = rnd.nextInt(3);
                    List<Double> f = new java.util.ArrayList<>();
                    for (int j = 0; j < 12; j++) {
                        f.add(rnd.nextGaussian() * 0.5 + (j % 3 == label ? 1.5 : 0));  // three separable classes
                    }
                    rows.add(org.apache.spark.sql.RowFactory.create(label, f));
                }
                org.apache.spark.sql.types.StructType schema = new org.apache.spark.sql.types.StructType()
                        .add("label", org.apache.spark.sql.types.DataTypes.IntegerType)
                        .add("features", org.apache.spark.sql.types.DataTypes.createArrayType(
                                org.apache.spark.sql.types.DataTypes.DoubleType));
                spark.createDataFrame(rows, schema).write().parquet(dir.resolve(split + ".parquet").toString());
                if (split.equals("test")) {
                    spark.createDataFrame(rows, schema).drop("label").write()
                            .parquet(tmp.resolve("bad").resolve("train.parquet").toString());
                }
            }
        } finally {
            spark.stop();
        }
        String[] a = args("spark", dir, tmp.resolve("parquet-runs"));
        String[] more = java.util.Arrays.copyOf(a, a.length + 1);
        more[a.length] = "data.format=parquet";
        more[3] = "data.validationExamples=50";
        more[13] = "train.maxSteps=60";
        StringWriter out = new StringWriter();
        assertEquals(0, cli(out, new StringWriter(), more));
        assertTrue(out.toString().contains("500 training and 120 test examples (12 features, 3 classes)"), out.toString());
        JsonNode summary = new ObjectMapper().readTree(onlyRun(tmp.resolve("parquet-runs")).resolve("summary.json").toFile());
        assertTrue(summary.get("testAccuracy").asDouble() > 0.8, "learns the three classes: " + summary);

        more[1] = "data.dir=" + tmp.resolve("bad");
        more[2] = "output.dir=" + tmp.resolve("bad-runs");
        StringWriter err = new StringWriter();
        assertEquals(2, cli(new StringWriter(), err, more));
        assertTrue(err.toString().contains("train.parquet has no column 'label' (it has features)"), err.toString());
        assertTrue(!Files.exists(tmp.resolve("bad-runs")), "nothing written");
    }

    /** A checkpoint written by two Spark workers resumes as a Spark job of one and of three workers. */
    @Test
    void aTwoWorkerCheckpointResumesOnOneAndThreeWorkers() throws Exception {
        Path data = IdxFixtures.write(tmp.resolve("data"), 600, 100, 6);
        String[] a = args("spark", data, tmp.resolve("two"));
        a[13] = "train.maxSteps=12";
        assertEquals(0, cli(new StringWriter(), new StringWriter(), a));
        Path checkpoints = onlyRun(tmp.resolve("two")).resolve("checkpoints");
        for (int w : new int[] {1, 3}) {
            String[] r = args("spark", data, tmp.resolve("on" + w));
            r[12] = "workers=" + w;
            r[13] = "train.maxSteps=20";
            String[] more = java.util.Arrays.copyOf(r, r.length + 2);
            more[r.length] = "--resume";
            more[r.length + 1] = checkpoints.toString();
            System.setProperty("spark.master", "local[" + w + "]");
            StringWriter out = new StringWriter();
            try {
                assertEquals(0, cli(out, new StringWriter(), more), out.toString());
            } finally {
                System.clearProperty("spark.master");
            }
            Path run = onlyRun(tmp.resolve("on" + w));
            JsonNode resume = new ObjectMapper().readTree(Files.readAllLines(run.resolve("metrics.jsonl")).get(1));
            assertEquals("resume", resume.get("type").asText());
            assertEquals(12, resume.get("step").asInt(), "continued from the two-worker checkpoint at step 12");
            assertEquals(20, new ObjectMapper().readTree(run.resolve("summary.json").toFile()).get("steps").asInt());
            assertEquals(w, new ObjectMapper().readTree(run.resolve("summary.json").toFile()).get("workers").asInt());
        }
    }

    /**
     * {@code data.distribution = partitioned}: the data repartitioned to the workers, each training on
     * its part; with a Self-Tuning Network, whose hyper steps take each worker's validation examples
     * from its own part, and whose records and report reach the driver.
     */
    @Test
    void partitionedDataTrainsEachWorkerOnItsPartWithSelfTuning() throws Exception {
        Path data = IdxFixtures.write(tmp.resolve("data"), 600, 100, 6);
        String[] a = args("spark", data, tmp.resolve("partitioned"));
        String[] more = java.util.Arrays.copyOf(a, a.length + 5);
        more[a.length] = "data.distribution=partitioned";
        more[a.length + 1] = "stn.tune=dropout.input,dropout.block,loss.zLoss";
        more[a.length + 2] = "stn.warmupSteps=5";
        more[a.length + 3] = "stn.trainSteps=2";
        more[a.length + 4] = "stn.lr=0.05";
        StringWriter out = new StringWriter();
        assertEquals(0, cli(out, new StringWriter(), more));
        assertTrue(out.toString().contains("repartitioned to the 2 workers"), out.toString());
        assertTrue(out.toString().contains("self-tuning: ended with {\"dropout.input\""), out.toString());
        Path run = onlyRun(tmp.resolve("partitioned"));
        List<String> lines = Files.readAllLines(run.resolve("metrics.jsonl"));
        ObjectMapper json = new ObjectMapper();
        double first = json.readTree(lines.get(1)).get("loss").asDouble();
        double last = lines.stream().filter(l -> l.contains("\"type\":\"train\"")).map(l -> {
            try {
                return json.readTree(l).get("loss").asDouble();
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }).reduce((x, y) -> y).orElseThrow();
        assertTrue(last < first, "the loss falls: " + first + " -> " + last);
        JsonNode summary = json.readTree(run.resolve("summary.json").toFile());
        assertEquals(15, summary.get("steps").asInt());
        assertTrue(summary.get("testAccuracy").asDouble() > 0.5, summary.toString());
        List<String> hyper = lines.stream().filter(l -> l.contains("\"type\":\"hyper\"")).toList();
        assertEquals(5, hyper.size(), "hyper steps after steps 7, 9, 11, 13, 15");
        assertEquals(5, summary.get("hyperSteps").asInt());
        assertEquals(json.readTree(hyper.get(4)).get("lambda"), summary.get("hyperparameters"));
        assertTrue(Files.readString(run.resolve("report.html")).contains("<h3>loss.zLoss</h3>"),
                "the driver writes the report");
    }

    private static String commandLine(ProcessHandle p) {
        try {
            return new String(Files.readAllBytes(Path.of("/proc", String.valueOf(p.pid()), "cmdline")),
                    java.nio.charset.StandardCharsets.UTF_8);
        } catch (java.io.IOException e) {
            return "";  // the process is gone
        }
    }

    private static Path onlyRun(Path runs) throws Exception {
        try (Stream<Path> s = Files.list(runs)) {
            List<Path> all = s.toList();
            assertEquals(1, all.size(), all.toString());
            return all.get(0);
        }
    }

    @Test
    void localTwoWorkersTrainAndTheDriverWritesTheRun() throws Exception {
        Path data = IdxFixtures.write(tmp.resolve("data"), 600, 100, 6);
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        assertEquals(0, cli(out, err, args("spark", data, tmp.resolve("spark"))), err.toString());
        assertTrue(out.toString().contains("2 workers as a barrier stage on local[2]"), out.toString());
        assertTrue(out.toString().contains("step 15/15  loss"), "progress from the driver: " + out);
        assertTrue(out.toString().contains("step 5/15") && out.toString().contains("ETA ?"), "no ETA yet: " + out);
        assertTrue(out.toString().lines().anyMatch(l -> l.startsWith("step 10/15") && l.matches(".*ETA (\\d+m\\d\\ds|[1-9]\\d*s)$")),
                "an ETA from the measured steps, not 0 while steps remain: " + out);
        assertTrue(out.toString().contains("ETA 0s"), "0 at the end: " + out);
        assertTrue(out.toString().lines().anyMatch(l -> l.matches("parameter digest: [0-9a-f]{64}")), out.toString());
        Path run = onlyRun(tmp.resolve("spark"));
        ObjectMapper json = new ObjectMapper();
        List<String> lines = Files.readAllLines(run.resolve("metrics.jsonl"));
        // 500 training examples, batch 40: 12 steps an epoch, so 15 steps end in the second epoch.
        assertEquals(1 + 15 + 1 + 2 + 1, lines.size(), "placement, 15 steps, checkpoint, 2 validations, test: " + lines);
        assertTrue(Files.exists(run.resolve("checkpoints/step-00000015/manifest.json")), "the final checkpoint");
        double first = json.readTree(lines.get(1)).get("loss").asDouble();
        double last = json.readTree(lines.get(15)).get("loss").asDouble();
        assertTrue(last < first, "loss falls: " + first + " -> " + last);
        JsonNode summary = json.readTree(run.resolve("summary.json").toFile());
        assertEquals(15, summary.get("steps").asInt());

        // The same job through the local launcher: the same bits.
        StringWriter out2 = new StringWriter();
        assertEquals(0, cli(out2, new StringWriter(), args("train", data, tmp.resolve("launcher"))));
        JsonNode other = json.readTree(onlyRun(tmp.resolve("launcher")).resolve("summary.json").toFile());
        assertEquals(other.get("parameterDigest").asText(), summary.get("parameterDigest").asText(),
                "Spark tasks and launched JVMs train the same model");
    }
}
