package io.roundhouse.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.roundhouse.worker.IdxFixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code roundhouse train workers=2}: two worker JVMs on this host, over IPC and over UDP on
 * loopback, started by the local launcher. They train to the same bits whichever the transport; a
 * worker killed mid-run makes the job fail with errors naming it, within the comms timeout.
 */
@Timeout(240)
class LocalLauncherTest {
    @TempDir
    static Path tmp;

    static Path data;

    @BeforeAll
    static void fixture() throws Exception {
        data = IdxFixtures.write(tmp.resolve("data"), 600, 100, 6);
    }

    private static Cli.Outcome cli(String... args) {
        return Cli.run(args);
    }

    /**
     * The shared overrides. comms.timeoutMs bounds how long the kill test waits for the dead peer;
     * the workers' start (a JVM each, on a loaded 2-core machine) has comms.startTimeoutMs's 120 s.
     */
    private static List<String> args(Path runs, String transport, String... more) {
        List<String> a = new ArrayList<>(List.of("train", "data.dir=" + data, "output.dir=" + runs,
                "data.validationExamples=100", "model.dim=16", "model.experts=4", "model.expertHidden=16",
                "train.batchSize=40", "train.warmupSteps=5", "train.evalBatchSize=50", "log.everySteps=5",
                "backend=cpu", "workers=2", "comms.transport=" + transport, "comms.timeoutMs=10000"));
        a.addAll(List.of(more));
        return a;
    }

    private static Path onlyRun(Path runs) throws Exception {
        try (Stream<Path> s = Files.list(runs)) {
            List<Path> all = s.toList();
            assertEquals(1, all.size(), "one run directory: " + all);
            return all.get(0);
        }
    }

    /** The worker logs of the run under {@code runs}, to say why a job failed. */
    private static String workerLogs(Path runs) throws Exception {
        StringBuilder sb = new StringBuilder();
        if (Files.isDirectory(runs)) {
            try (Stream<Path> s = Files.walk(runs)) {
                for (Path log : s.filter(f -> f.getFileName().toString().matches("worker-\\d+\\.log")).sorted().toList()) {
                    sb.append("\n--- ").append(log.getFileName()).append('\n').append(Files.readString(log));
                }
            }
        }
        return sb.toString();
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"ipc", "udp"})
    void twoWorkerJvmsTrain(String transport) throws Exception {
        Path runs = tmp.resolve("ok-" + transport);
        Cli.Outcome o = cli(args(runs, transport, "train.maxSteps=20").toArray(String[]::new));
        assertEquals(0, o.code(), o.err());
        assertTrue(o.out().contains("launching 2 workers over " + transport), o.out());
        assertTrue(o.out().contains("worker 1: experts 2-3"), "the placement is printed");
        assertTrue(o.out().contains("test: loss"), "rank 0's progress is echoed");
        Path run = onlyRun(runs);
        for (String f : new String[] {"config.conf", "metrics.jsonl", "summary.json", "launch.json", "worker-0.log",
            "worker-1.log"}) {
            assertTrue(Files.isRegularFile(run.resolve(f)), f + " in " + run);
        }
        JsonNode summary = new ObjectMapper().readTree(run.resolve("summary.json").toFile());
        assertEquals(20, summary.get("steps").asInt());
        assertEquals(2, summary.get("workers").asInt());
        Files.writeString(tmp.resolve("digest-" + transport), summary.get("parameterDigest").asText());
        Path other = tmp.resolve("digest-" + (transport.equals("ipc") ? "udp" : "ipc"));
        if (Files.exists(other)) {
            assertEquals(Files.readString(other), summary.get("parameterDigest").asText(),
                    "IPC and UDP move the same bytes: the same parameters");
        }
    }

    @org.junit.jupiter.api.Test
    void aBatchTooSmallForTheWorkersIsRefusedBeforeLaunching() {
        Path runs = tmp.resolve("refused");
        Cli.Outcome o = cli(args(runs, "ipc").stream()
                .map(a -> a.equals("workers=2") ? "workers=3" : a.startsWith("train.batchSize=") ? "train.batchSize=2" : a)
                .toArray(String[]::new));
        assertEquals(2, o.code());
        assertTrue(o.err().contains("train.batchSize = 2 gives some of the 3 workers no examples"), o.err());
        assertTrue(!Files.exists(runs), "nothing written, no worker started");
    }

    @org.junit.jupiter.api.Test
    void benchTrainComparesWorkerCounts() throws Exception {
        Path json = tmp.resolve("bench-train.json");
        List<String> a = new ArrayList<>(List.of("bench", "train", "--workers", "1,2", "--steps", "20", "--json",
                json.toString()));
        a.addAll(args(tmp.resolve("bench-runs"), "ipc").subList(1, 12)); // the overrides up to backend
        Cli.Outcome o = cli(a.toArray(String[]::new));
        assertEquals(0, o.code(), o.err());
        assertTrue(o.out().contains("comm %"), o.out());
        JsonNode runs = new ObjectMapper().readTree(json.toFile()).get("runs");
        assertEquals(2, runs.size());
        assertEquals(1.0, runs.get(0).get("vsFirst").asDouble(), 1e-12);
        // One worker's "communication" phases are no-ops, but they are timed on a shared machine, where
        // a preempted thread can land in one: the bound tells a no-op from a real exchange, not noise.
        assertTrue(runs.get(0).get("commShare").asDouble() < 0.2, "one worker hardly communicates: "
                + runs.get(0).get("commShare"));
        double share = runs.get(1).get("commShare").asDouble();
        assertTrue(share > 0 && share < 1, "two workers communicate for part of the step: " + share);
        int tokensPerStep = new ObjectMapper().readTree(json.toFile()).get("tokensPerStep").asInt();
        for (JsonNode run : runs) {
            String w = "workers " + run.get("workers").asInt() + ": ";
            double stepMs = run.get("stepMs").asDouble();
            JsonNode phases = run.get("phaseMs");
            // The report's figures agree with each other: the communication is the exchange and
            // all-reduce phases, the phases (with "other") make up the step, and the throughput is
            // the tokens of a step over its time.
            double comm = phases.get("dispatch").asDouble() + phases.get("combine").asDouble()
                    + phases.get("all_reduce").asDouble();
            assertEquals(comm, run.get("commMs").asDouble(), 0.01 * comm + 1e-3, w + "commMs = its phases");
            assertEquals(run.get("commMs").asDouble() / stepMs, run.get("commShare").asDouble(), 1e-6, w + "share");
            double sum = 0;
            for (JsonNode v : phases) {
                sum += v.asDouble();
            }
            assertEquals(stepMs, sum, 1e-6 * stepMs, w + "the phases make up the step");
            assertEquals(tokensPerStep / (stepMs / 1000), run.get("tokensPerSecond").asDouble(),
                    1e-6 * run.get("tokensPerSecond").asDouble(), w + "tokens/s from the step time");
            for (String phase : new String[] {"experts", "backward", "optimizer"}) {
                assertTrue(phases.get(phase).asDouble() > 0, w + phase + " is timed: " + phases);
            }
        }
        for (String phase : new String[] {"dispatch", "combine", "all_reduce"}) {
            assertTrue(runs.get(1).get("phaseMs").get(phase).asDouble() > 0, "two workers exchange: " + phase);
        }
        assertEquals(runs.get(1).get("tokensPerSecond").asDouble() / runs.get(0).get("tokensPerSecond").asDouble(),
                runs.get(1).get("vsFirst").asDouble(), 1e-9, "vsFirst is the ratio of throughputs");
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"ipc", "udp"})
    void aKilledWorkerFailsTheJobWithItsName(String transport) throws Exception {
        Path runs = tmp.resolve("kill-" + transport);
        CompletableFuture<Cli.Outcome> job = CompletableFuture.supplyAsync(
                () -> cli(args(runs, transport, "train.epochs=100000").toArray(String[]::new)));
        // Wait until the workers are training, then SIGKILL worker 1.
        long pid = -1;
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (pid < 0 && System.nanoTime() < until && !job.isDone()) {
            Thread.sleep(100);
            if (!Files.isDirectory(runs)) {
                continue;
            }
            Path run = onlyRun(runs);
            Path metrics = run.resolve("metrics.jsonl");
            if (Files.exists(run.resolve("launch.json")) && Files.exists(metrics)
                    && Files.readAllLines(metrics).stream().filter(l -> l.contains("\"train\"")).count() >= 3) {
                pid = new ObjectMapper().readTree(run.resolve("launch.json").toFile()).get("pids").get(1).asLong();
            }
        }
        if (pid < 0) {
            String why = job.isDone() ? "the job ended first: " + job.get() : "no third training step within 120 s";
            throw new AssertionError("the workers did not start training (" + why + ")" + workerLogs(runs));
        }
        long killedAt = System.nanoTime();
        ProcessHandle.of(pid).orElseThrow().destroyForcibly();
        Cli.Outcome o = job.get(60, TimeUnit.SECONDS);
        double seconds = (System.nanoTime() - killedAt) / 1e9;
        System.out.printf("%s: the job failed %.1f s after worker 1 was killed%n", transport, seconds);
        assertEquals(1, o.code());
        assertTrue(o.err().contains("error: worker 1 (pid " + pid + ") was killed (signal 9)"), o.err());
        assertTrue(o.err().contains("worker 0: error: worker 0: comms"), "worker 0's own error: " + o.err());
        assertTrue(o.err().contains("rank 1"), "worker 0 names its dead peer: " + o.err());
    }
}
