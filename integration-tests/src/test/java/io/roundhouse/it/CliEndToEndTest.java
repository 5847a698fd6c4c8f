package io.roundhouse.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.roundhouse.driver.RoundhouseCli;
import io.roundhouse.worker.IdxFixtures;
import io.roundhouse.worker.config.ConfigKey;
import io.roundhouse.worker.config.ConfigKeys;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The roundhouse command line, end to end, on the shipped config with a small fixture dataset. */
class CliEndToEndTest {
    private static final Path SHIPPED = Path.of("..", "conf", "fashion-mnist-moe.conf");

    @TempDir
    Path tmp;

    private static Cli.Outcome cli(String... args) {
        return Cli.run(args);
    }

    @Test
    void trainsWithTheShippedConfigAndOverrides() throws IOException {
        Path data = IdxFixtures.write(tmp.resolve("data"), 600, 200, 4);
        Path runs = tmp.resolve("runs");
        Cli.Outcome o = cli("train", "-c", SHIPPED.toString(), "data.dir=" + data, "output.dir=" + runs,
                "data.validationExamples=100", "model.dim=32", "model.expertHidden=32", "train.batchSize=50",
                "train.epochs=2", "train.warmupSteps=5", "log.everySteps=5");
        assertEquals(0, o.code(), o.err());
        assertTrue(o.out().contains("model.dim = 32"), "the resolved config is printed");
        assertTrue(o.out().contains("test: loss"), "the final line reports the test set");
        Path run;
        try (Stream<Path> s = Files.list(runs)) {
            run = s.findFirst().orElseThrow();
        }
        for (String f : new String[] {"config.conf", "metrics.jsonl", "summary.json"}) {
            assertTrue(Files.isRegularFile(run.resolve(f)), f + " in " + run);
        }
        JsonNode summary = new ObjectMapper().readTree(run.resolve("summary.json").toFile());
        assertEquals(20, summary.get("steps").asInt());
        assertTrue(summary.get("testAccuracy").asDouble() > 0.5, "learns the fixture");
    }

    @Test
    void badValuesFailWithOneClearErrorAndWriteNothing() throws IOException {
        Path data = IdxFixtures.write(tmp.resolve("data"), 60, 20, 4);
        Path runs = tmp.resolve("runs");
        String[][] cases = {
            {"model.topK=9", "model.topK = 9 is larger than model.experts = 8"},
            {"model.capacityFactor=-0.5", "model.capacityFactor = '-0.5': out of range"},
            {"model.expert=4", "unknown key 'model.expert'; did you mean model.experts?"},
            {"data.dir=" + tmp.resolve("missing"), "is not a folder"},
            {"backend=cuda", "backend = cuda, but "},
            {"data.format=parquet", "data.format = parquet is read by the Spark job"},
        };
        for (String[] c : cases) {
            if (c[0].equals("backend=cuda") && io.roundhouse.kernels.cuda.CudaBackend.unavailableReason() == null) {
                continue;  // a GPU machine runs it
            }
            String setting = c[0].startsWith("data.dir") ? "log.everySteps=50" : "data.dir=" + data;
            Cli.Outcome o = cli("train", "-c", SHIPPED.toString(), setting, "output.dir=" + runs, c[0]);
            assertEquals(RoundhouseCli.EXIT_USAGE, o.code(), c[0]);
            assertTrue(o.err().startsWith("error: ") && o.err().contains(c[1]), c[0] + " -> " + o.err());
            assertEquals(1, o.err().strip().lines().count(), "one line, no stack trace: " + o.err());
            assertFalse(Files.exists(runs), c[0] + ": nothing written");
        }
    }

    @Test
    void resumeContinuesFromACheckpoint() throws IOException {
        Path data = IdxFixtures.write(tmp.resolve("data"), 600, 200, 4);
        String[] common = {"-c", SHIPPED.toString(), "data.dir=" + data, "data.validationExamples=100",
            "model.dim=16", "model.expertHidden=16", "train.batchSize=50", "train.epochs=2", "train.warmupSteps=5",
            "workers=1", "checkpoint.everySteps=10", "checkpoint.keep=0"};
        Cli.Outcome first = cli(concat(new String[] {"train", "output.dir=" + tmp.resolve("a")}, common));
        assertEquals(0, first.code(), first.err());
        Path run;
        try (Stream<Path> s = Files.list(tmp.resolve("a"))) {
            run = s.findFirst().orElseThrow();
        }
        Path step10 = run.resolve("checkpoints").resolve("step-00000010");
        Cli.Outcome resumed = cli(concat(new String[] {"train", "output.dir=" + tmp.resolve("b"), "--resume",
            step10.toString()}, common));
        assertEquals(0, resumed.code(), resumed.err());
        assertTrue(resumed.out().contains("resumed at step 10 from " + step10), resumed.out());
        // Resume equals uninterrupted: the same final parameters, bit for bit.
        Path resumedRun;
        try (Stream<Path> s = Files.list(tmp.resolve("b"))) {
            resumedRun = s.findFirst().orElseThrow();
        }
        ObjectMapper json = new ObjectMapper();
        JsonNode whole = json.readTree(run.resolve("summary.json").toFile());
        JsonNode continued = json.readTree(resumedRun.resolve("summary.json").toFile());
        assertEquals(whole.get("steps").asInt(), continued.get("steps").asInt());
        assertEquals(whole.get("parameterDigest").asText(), continued.get("parameterDigest").asText(),
                "the resumed run ends with the uninterrupted run's parameters");
        Cli.Outcome both = cli(concat(new String[] {"train", "--resume", step10.toString(), "train.resume=" + step10}, common));
        assertEquals(RoundhouseCli.EXIT_USAGE, both.code());
        assertTrue(both.err().contains("--resume and train.resume are both given"), both.err());
    }

    private static String[] concat(String[] a, String[] b) {
        String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    @Test
    void configCommandListsEveryKey() {
        Cli.Outcome o = cli("config", "-c", SHIPPED.toString());
        assertEquals(0, o.code());
        for (ConfigKey<?> k : ConfigKeys.ALL) {
            assertTrue(o.out().contains(k.name() + " = " + k.defaultText()), k.name());
            assertTrue(o.out().contains("# " + k.doc()), "doc of " + k.name());
        }
    }

    @Test
    void unknownBenchmarkIsNamed() {
        Cli.Outcome o = cli("bench", "allgather");
        assertEquals(RoundhouseCli.EXIT_USAGE, o.code());
        assertTrue(o.err().contains("unknown benchmark 'allgather'"), o.err());
    }
}
