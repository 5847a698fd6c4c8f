package io.roundhouse.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.roundhouse.driver.RoundhouseCli;
import io.roundhouse.worker.IdxFixtures;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Errors of the environment and of the Spark job print one line (two at most) naming the problem
 * and the fix, no stack trace, and exit with 2 when the job cannot run as given or 1 when it
 * failed while running. Bad input (config, data, checkpoints, the command line) is
 * {@link BadInputTest}'s. The cases are listed in docs/architecture.md ("Errors").
 */
@Timeout(600)
class UserErrorsTest {
    private static final Path SHIPPED = Path.of("..", "conf", "fashion-mnist-moe.conf");
    private static final int USAGE = RoundhouseCli.EXIT_USAGE;
    private static final int RUNTIME = RoundhouseCli.EXIT_FAILURE;

    @TempDir
    Path tmp;

    private Path data;
    private Path runs;
    private Path checkpoints;   // a complete run's checkpoints: step-00000005 and step-00000010

    /** The small model every case starts from; {@code more}: options, or key=value that replace the defaults. */
    private String[] job(String command, String... more) {
        return Cli.job(SHIPPED, List.of("data.dir=" + data, "output.dir=" + runs, "data.validationExamples=100",
                "model.dim=16", "model.experts=4", "model.expertHidden=16", "train.batchSize=40",
                "train.warmupSteps=2", "train.maxSteps=10", "train.evalBatchSize=50", "log.everySteps=5",
                "backend=cpu", "comms.timeoutMs=20000"), command, more);
    }

    @BeforeEach
    void fixtures() throws IOException {
        data = IdxFixtures.write(tmp.resolve("data"), 400, 100, 3);
        runs = tmp.resolve("runs");
        Cli.Outcome o = Cli.run(job("train", "output.dir=" + tmp.resolve("first"), "checkpoint.everySteps=5",
                "checkpoint.keep=0"));
        assertEquals(0, o.code(), o.err());
        try (Stream<Path> s = Files.list(tmp.resolve("first"))) {
            checkpoints = s.findFirst().orElseThrow().resolve("checkpoints");
        }
    }

    /** The command's error output is one or two lines, starts with "error: ", says {@code what}. */
    private static void assertUserError(Cli.Outcome o, int code, String what, String name) {
        assertEquals(code, o.code(), name + ": " + o.err());
        assertTrue(o.err().startsWith("error: "), name + ": " + o.err());
        assertTrue(o.err().contains(what), name + ": expected '" + what + "' in " + o.err());
        assertTrue(o.err().strip().lines().count() <= 2, name + ": one or two lines: " + o.err());
        assertFalse(o.err().contains("\tat ") || o.err().contains("Exception"), name + ": no trace: " + o.err());
    }

    private Path damagedCopy(String name, boolean dropManifest) throws IOException {
        Path copy = tmp.resolve(name);
        try (Stream<Path> s = Files.walk(checkpoints)) {
            for (Path p : s.toList()) {
                Files.copy(p, copy.resolve(checkpoints.relativize(p).toString()));
            }
        }
        try (Stream<Path> s = Files.walk(copy)) {
            for (Path p : s.filter(f -> f.getFileName().toString().endsWith(".bin")
                    || (dropManifest && f.getFileName().toString().equals("manifest.json"))).toList()) {
                if (p.toString().endsWith(".json")) {
                    Files.delete(p);
                } else {
                    byte[] b = Files.readAllBytes(p);
                    b[b.length / 2] ^= (byte) 0xFF;
                    Files.write(p, b);
                }
            }
        }
        return copy;
    }

    /** A small private tmpfs (needs root to mount), unmounted when closed. */
    private static AutoCloseable tmpfs(Path at, String size) throws Exception {
        Files.createDirectories(at);
        Process mount = new ProcessBuilder("mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", at.toString())
                .redirectErrorStream(true).start();
        String why = new String(mount.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        Assumptions.assumeTrue(mount.waitFor() == 0, "skipped: cannot mount a private tmpfs here (" + why + ")");
        return () -> new ProcessBuilder("umount", at.toString()).inheritIO().start().waitFor();
    }

    /**
     * A full /dev/shm, played by a 4 MiB tmpfs given as comms.aeronDir, and a disk that fills up
     * as a checkpoint is written, played by a 64 KiB one given as checkpoint.dir, then by one that
     * holds one checkpoint and a half.
     */
    @Test
    void fullFileSystemsAreNamed() throws Exception {
        Path shm = tmp.resolve("small-shm");
        try (AutoCloseable mounted = tmpfs(shm, "4m")) {
            assertUserError(Cli.run(job("train", "comms.aeronDir=" + shm, "workers=2")), RUNTIME,
                    "comms: the Aeron logs need about 61 MiB in " + shm, "full /dev/shm");  // 2 members and their siblings
            // UDP on one machine: a driver per worker, checked together before any starts
            assertUserError(Cli.run(job("train", "comms.aeronDir=" + shm, "workers=2", "comms.transport=udp")), RUNTIME,
                    "comms: the Aeron logs need about 122 MiB in " + shm + " (2 media drivers", "full /dev/shm, UDP");
        }
        Path disk = tmp.resolve("small-disk");
        try (AutoCloseable mounted = tmpfs(disk, "64k")) {
            Cli.Outcome o = Cli.run(job("train", "checkpoint.dir=" + disk, "checkpoint.everySteps=5"));
            assertUserError(o, RUNTIME, "cannot write checkpoint file " + disk.resolve("step-00000005")
                    .resolve("shard-0.bin") + ": No space left on device. That checkpoint stays incomplete", "full disk");
            try (Stream<Path> s = Files.walk(disk)) {
                assertEquals(List.of(), s.filter(Files::isRegularFile).toList(), "no partial file left");
            }
        }
        // A disk with room for one checkpoint and half of the next: the second fails, the first
        // stays as written (the same bytes as the fixture run's) and resumes to the digest of a
        // run that was never interrupted.
        Path step5 = checkpoints.resolve("step-00000005");
        long pages = 0;
        try (Stream<Path> s = Files.list(step5)) {
            for (Path f : s.toList()) {
                pages += (Files.size(f) + 4095) / 4096;
            }
        }
        Path half = tmp.resolve("one-checkpoint-disk");
        try (AutoCloseable mounted = tmpfs(half, (pages * 3 / 2) * 4 + "k")) {
            Cli.Outcome o = Cli.run(job("train", "checkpoint.dir=" + half, "checkpoint.everySteps=5",
                    "checkpoint.keep=0", "output.dir=" + tmp.resolve("half-runs")));
            assertUserError(o, RUNTIME, "cannot write checkpoint file " + half.resolve("step-00000010")
                    .resolve("shard-0.bin") + ": No space left on device", "disk full at the second checkpoint");
            for (String f : new String[] {"shard-0.bin", "manifest.json"}) {
                assertEquals(-1L, Files.mismatch(step5.resolve(f), half.resolve("step-00000005").resolve(f)),
                        "the earlier checkpoint's " + f + " is intact");
            }
            Cli.Outcome resumed = Cli.run(job("train", "--resume", half.resolve("step-00000005").toString(),
                    "output.dir=" + tmp.resolve("resumed"), "checkpoint.everySteps=0"));
            assertEquals(0, resumed.code(), resumed.err());
            ObjectMapper json = new ObjectMapper();
            assertEquals(json.readTree(checkpoints.getParent().resolve("summary.json").toFile()).get("parameterDigest"),
                    json.readTree(onlyRun(tmp.resolve("resumed")).resolve("summary.json").toFile()).get("parameterDigest"),
                    "resumed from the surviving checkpoint: the uninterrupted run's parameters");
        }
    }

    private static Path onlyRun(Path runs) throws IOException {
        try (Stream<Path> s = Files.list(runs)) {
            return s.findFirst().orElseThrow();
        }
    }

    /**
     * The Spark job refuses a checkpoint, Parquet input or checkpoint folder it cannot use on the
     * driver, before any task; a task's own user error ends the job at once, without stage retries.
     */
    @Test
    void sparkJobErrors() throws IOException {
        Path corrupt = damagedCopy("corrupt", false);
        Object[][] cases = {
            {job("spark", "workers=2", "--resume", checkpoints.toString(), "model.experts=8"), USAGE,
                "was written by another model"},
            {job("spark", "workers=2", "--resume", corrupt.toString()), USAGE, "is corrupt"},
            {job("spark", "workers=2", "data.format=parquet", "data.dir=" + tmp.resolve("none")), USAGE,
                "has no train.parquet"},
            {job("spark", "workers=2", "checkpoint.dir=hdfs://no-such-host.invalid:1/x"), USAGE,
                "no file system for it"},
            // Each worker's part holds 250 examples, all taken for validation: found in the tasks only.
            {job("spark", "workers=2", "data.distribution=partitioned", "data.validationExamples=499"), USAGE,
                "train.batchSize = 20 is larger than the training split"},
        };
        for (Object[] c : cases) {
            Cli.Outcome o = Cli.run((String[]) c[0]);
            if (((String) c[2]).startsWith("train.batchSize")) {
                // either worker may be first; both name the fix
                assertTrue(o.err().contains("lower data.validationExamples") || o.err().contains((String) c[2]),
                        o.err());
                assertUserError(o, (int) c[1], "error: ", String.join(" ", (String[]) c[0]));
            } else {
                assertUserError(o, (int) c[1], (String) c[2], String.join(" ", (String[]) c[0]));
            }
        }
    }

    /**
     * The whole console of a separate JVM (Spark's log lines included) for a task's user error:
     * the error line, and no stack frame anywhere.
     */
    @Test
    void aSparkTasksUserErrorPrintsNoTraceAnywhere() throws Exception {
        List<String> cmd = new ArrayList<>();
        cmd.add(ProcessHandle.current().info().command().orElse("java"));
        cmd.addAll(ManagementFactory.getRuntimeMXBean().getInputArguments().stream()
                .filter(a -> !a.startsWith("-agentlib") && !a.startsWith("-javaagent")).toList());
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), RoundhouseCli.class.getName()));
        cmd.addAll(List.of(job("spark", "workers=2", "data.distribution=partitioned", "data.validationExamples=499")));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String console = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS));
        System.out.print(console);
        assertEquals(USAGE, p.exitValue(), console);
        assertTrue(console.lines().anyMatch(l -> l.startsWith("error: train.batchSize = 20 is larger than the training "
                + "split") || l.startsWith("error: data.validationExamples")), console);
        assertFalse(console.lines().anyMatch(l -> l.matches("\\s+at .*") || l.startsWith("Caused by")),
                "no stack frame: " + console);
        assertTrue(console.lines().filter(l -> l.contains("Exception in task")).count() <= 2,
                "no stage retries: " + console);
    }
}
