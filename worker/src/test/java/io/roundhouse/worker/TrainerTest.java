package io.roundhouse.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.roundhouse.kernels.BackendException;
import io.roundhouse.worker.config.ConfigException;
import io.roundhouse.worker.config.JobConfig;
import io.roundhouse.worker.data.DataException;
import io.roundhouse.worker.train.Trainer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TrainerTest {
    @TempDir
    Path tmp;

    private Map<String, String> small(Path data, Path out) {
        Map<String, String> m = new HashMap<>();
        m.put("data.dir", data.toString());
        m.put("data.validationExamples", "200");
        m.put("model.dim", "32");
        m.put("model.experts", "4");
        m.put("model.expertHidden", "32");
        m.put("train.epochs", "3");
        m.put("train.batchSize", "50");
        m.put("train.lr", "3e-3");
        m.put("train.warmupSteps", "10");
        m.put("train.evalBatchSize", "128");
        m.put("output.dir", out.toString());
        m.put("log.everySteps", "10");
        m.put("backend", "cpu");
        return m;
    }

    @Test
    void trainsAFixtureAndWritesTheRunDirectory() throws IOException {
        Path data = IdxFixtures.write(tmp.resolve("data"), 1200, 300, 1);
        Path out = tmp.resolve("out");
        ByteArrayOutputStream console = new ByteArrayOutputStream();
        Trainer.Result r = new Trainer(JobConfig.of(small(data, out)), new PrintStream(console, true)).run();
        String text = console.toString();
        System.out.print(text);

        assertEquals(60, r.steps(), "3 epochs of 1000/50 steps");
        assertTrue(r.testAccuracy() > 0.9, "the fixture is easy; got test accuracy " + r.testAccuracy());
        assertTrue(text.contains("[epoch 1] step 10/60"), "progress lines");
        assertTrue(Files.readString(r.runDir().resolve("config.conf")).contains("model.dim = 32"));
        JsonNode summary = new ObjectMapper().readTree(r.runDir().resolve("summary.json").toFile());
        assertEquals(r.testAccuracy(), summary.get("testAccuracy").asDouble(), 1e-12);

        List<String> lines = Files.readAllLines(r.runDir().resolve("metrics.jsonl"));
        assertEquals(1 + 60 + 3 + 1 + 1, lines.size(),
                "the placement, one line per step, per validation, for the checkpoint after the last step and for the test");
        ObjectMapper json = new ObjectMapper();
        assertEquals("placement", json.readTree(lines.get(0)).get("type").asText());
        double firstLoss = json.readTree(lines.get(1)).get("loss").asDouble();
        double lastLoss = 0;
        for (String line : lines) {
            JsonNode n = json.readTree(line);
            if (!n.get("type").asText().equals("train")) {
                continue;
            }
            lastLoss = n.get("loss").asDouble();
            int kept = 0;
            for (JsonNode block : n.get("expertLoad")) {
                assertEquals(4, block.size());
                for (JsonNode e : block) {
                    kept += e.asInt();
                }
            }
            assertEquals(2 * 50 * 2, kept + n.get("droppedCopies").asInt(), "kept + dropped = blocks·N·K");
            JsonNode balance = n.get("balance");
            assertEquals(2, balance.size(), "one balance entry per MoE layer");
            double droppedPercent = 0;
            for (JsonNode layer : balance) {
                assertTrue(layer.get("loadMaxOverMean").asDouble() >= 1, layer.toString());
                double h = layer.get("entropy").asDouble();
                assertTrue(h > 0 && h <= Math.log(4) + 1e-6, "router entropy in (0, ln E]: " + h);
                droppedPercent += layer.get("droppedPercent").asDouble();
            }
            assertEquals(100.0 * n.get("droppedCopies").asInt() / (2 * 50 * 2), droppedPercent / 2, 1e-9,
                    "per-layer dropped shares average to the whole step's (equal copies per layer)");
            int step = n.get("step").asInt();
            assertEquals(step % 10 == 0, n.has("expertSimilarity"), "similarity at the log steps (every 10)");
            if (n.has("expertSimilarity")) {
                for (JsonNode layer : n.get("expertSimilarity")) {
                    assertTrue(Math.abs(layer.asDouble()) < 1, "a cosine: " + layer);
                }
            }
            assertTrue(n.get("tokensPerSecond").asDouble() > 0);
            JsonNode phases = n.get("phaseMs");
            assertEquals(List.of("embed", "attention", "mixer", "route", "permute", "dispatch", "experts", "combine", "unpermute", "head",
                    "backward", "all_reduce", "optimizer"), iterableToList(phases.fieldNames()));
            double sum = 0;
            for (JsonNode v : phases) {
                assertTrue(v.asDouble() >= 0);
                sum += v.asDouble();
            }
            assertTrue(phases.get("experts").asDouble() > 0 && phases.get("backward").asDouble() > 0);
            assertEquals(0.0, phases.get("all_reduce").asDouble(), "one process reduces nothing");
            double stepMs = 1000.0 * 50 / n.get("tokensPerSecond").asDouble();
            assertTrue(sum <= stepMs * 1.001, "phases (" + sum + " ms) fit in the step (" + stepMs + " ms)");
        }
        assertTrue(lastLoss < firstLoss / 2, "loss falls: " + firstLoss + " -> " + lastLoss);
        JsonNode test = json.readTree(lines.get(lines.size() - 1));
        assertEquals("test", test.get("split").asText());
    }

    private static List<String> iterableToList(java.util.Iterator<String> it) {
        List<String> out = new java.util.ArrayList<>();
        it.forEachRemaining(out::add);
        return out;
    }

    @Test
    void badInputWritesNothing() throws IOException {
        Path out = tmp.resolve("out");
        Map<String, String> m = small(tmp.resolve("no-such-data"), out);
        DataException e = assertThrows(DataException.class,
                () -> new Trainer(JobConfig.of(m), new PrintStream(new ByteArrayOutputStream())).run());
        assertTrue(e.getMessage().contains("is not a folder"), e.getMessage());
        assertFalse(Files.exists(out), "nothing written");

        Path data = IdxFixtures.write(tmp.resolve("data"), 100, 20, 1);
        Map<String, String> big = small(data, out);
        big.put("train.batchSize", "500");
        big.put("data.validationExamples", "20");
        ConfigException c = assertThrows(ConfigException.class,
                () -> new Trainer(JobConfig.of(big), new PrintStream(new ByteArrayOutputStream())).run());
        assertTrue(c.getMessage().startsWith("train.batchSize = 500 is larger than the training split"), c.getMessage());
        assertFalse(Files.exists(out), "nothing written");

        Map<String, String> allValidation = small(data, out);
        allValidation.put("data.validationExamples", "100");
        ConfigException v = assertThrows(ConfigException.class,
                () -> new Trainer(JobConfig.of(allValidation), new PrintStream(new ByteArrayOutputStream())).run());
        assertTrue(v.getMessage().startsWith("data.validationExamples = 100 leaves no training examples"), v.getMessage());
        assertFalse(Files.exists(out), "nothing written");

        Path file = Files.writeString(tmp.resolve("a-file"), "x");
        Map<String, String> toFile = small(data, file.resolve("sub"));
        ConfigException o = assertThrows(ConfigException.class,
                () -> new Trainer(JobConfig.of(toFile), new PrintStream(new ByteArrayOutputStream())).run());
        assertTrue(o.getMessage().contains("is a file, not a folder"), o.getMessage());
    }

    @Test
    void cudaWithoutAGpuIsRefusedWithTheReason() throws IOException {
        String why = io.roundhouse.kernels.cuda.CudaBackend.unavailableReason();
        org.junit.jupiter.api.Assumptions.assumeTrue(why != null, "this machine can run the CUDA backend");
        Path data = IdxFixtures.write(tmp.resolve("data"), 100, 20, 1);
        Map<String, String> m = small(data, tmp.resolve("out"));
        m.put("backend", "cuda");
        BackendException e = assertThrows(BackendException.class,
                () -> new Trainer(JobConfig.of(m), new PrintStream(new ByteArrayOutputStream())).run());
        assertTrue(e.getMessage().contains("backend = cuda, but " + why), e.getMessage());
        assertFalse(Files.exists(tmp.resolve("out")), "nothing written");
    }

    @Test
    void sameSeedSameParametersOtherSeedOtherParameters() throws IOException {
        Path data = IdxFixtures.write(tmp.resolve("data"), 400, 50, 3);
        String[] digests = new String[3];
        for (int run = 0; run < 3; run++) {
            Map<String, String> m = small(data, tmp.resolve("out" + run));
            m.put("train.maxSteps", "8");
            m.put("data.validationExamples", "0");
            m.put("train.seed", run == 2 ? "2" : "1");
            Trainer.Result r = new Trainer(JobConfig.of(m), new PrintStream(new ByteArrayOutputStream())).run();
            assertEquals(8, r.steps());
            digests[run] = r.parameterDigest();
        }
        assertEquals(digests[0], digests[1], "identical runs give bit-identical parameters");
        assertFalse(digests[0].equals(digests[2]), "another seed gives other parameters");
    }

    /** bf16 GEMMs train the fixture as well, and are really used (other parameters than fp32's). */
    @Test
    void bf16TrainsAndDiffersFromFp32() throws IOException {
        Path data = IdxFixtures.write(tmp.resolve("data"), 1200, 300, 1);
        Map<String, String> m = small(data, tmp.resolve("bf16"));
        m.put("model.precision", "bf16");
        Trainer.Result bf16 = new Trainer(JobConfig.of(m), new PrintStream(new ByteArrayOutputStream())).run();
        assertTrue(bf16.testAccuracy() > 0.9, "the fixture is easy in bf16 too; got " + bf16.testAccuracy());
        String[] digests = new String[2];
        for (String precision : new String[] {"fp32", "bf16"}) {
            Map<String, String> s = small(data, tmp.resolve("short-" + precision));
            s.put("train.maxSteps", "8");
            s.put("model.precision", precision);
            digests[precision.equals("fp32") ? 0 : 1] = new Trainer(JobConfig.of(s),
                    new PrintStream(new ByteArrayOutputStream())).run().parameterDigest();
        }
        assertFalse(digests[0].equals(digests[1]), "bf16 gives other parameters than fp32 after 8 steps");
    }
}
