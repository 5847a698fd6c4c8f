package io.roundhouse.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.roundhouse.worker.train.Trainer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The trainer as W workers (threads of this JVM over Aeron IPC, each its own backend and model
 * shard) against one worker on the same data: the same losses step by step and the same
 * evaluation results, one run directory written by rank 0, and bit-identical parameters from two
 * runs with the same seed and W.
 */
@Timeout(180)
class DistributedTrainerTest {
    private static final int STEPS = 12;

    @TempDir
    static Path tmp;

    static Path data;

    @BeforeAll
    static void fixture() throws Exception {
        data = IdxFixtures.write(tmp.resolve("data"), 700, 101, 5);
    }

    private static Map<String, String> config(Path out, int workers) {
        Map<String, String> m = new HashMap<>();
        m.put("workers", String.valueOf(workers));
        m.put("data.dir", data.toString());
        m.put("data.validationExamples", "99");
        m.put("model.dim", "16");
        m.put("model.experts", "6");
        m.put("model.expertHidden", "12");
        m.put("model.capacityFactor", "0");  // dropless: the capacity rule is per worker
        m.put("train.maxSteps", String.valueOf(STEPS));
        m.put("train.batchSize", "30");
        m.put("train.warmupSteps", "3");
        m.put("train.evalBatchSize", "16");
        m.put("output.dir", out.toString());
        m.put("log.everySteps", "4");
        m.put("backend", "cpu");
        return m;
    }

    /** Trains with W workers; results in rank order. */
    private static List<Trainer.Result> train(int w, Path out, String tag) throws Exception {
        return TrainerGroups.train(config(out, w), w, tmp.resolve("aeron"), tag);
    }

    private static List<JsonNode> records(Path runDir, String type) throws Exception {
        return TrainerGroups.records(runDir, type);
    }

    @Test
    void wWorkersTrainLikeOneWorker() throws Exception {
        Trainer.Result one = train(1, tmp.resolve("one"), "one").get(0);
        List<JsonNode> oneSteps = records(one.runDir(), "train");
        for (int w : new int[] {2, 3}) {
            List<Trainer.Result> rs = train(w, tmp.resolve("w" + w), "w" + w);
            Trainer.Result r0 = rs.get(0);
            assertNotNull(r0.runDir(), "rank 0 writes the run directory");
            for (int r = 1; r < w; r++) {
                assertNull(rs.get(r).runDir(), "rank " + r + " writes nothing");
                assertEquals(r0.parameterDigest(), rs.get(r).parameterDigest(), "every worker reports the global digest");
                assertEquals(r0.testLoss(), rs.get(r).testLoss(), "every worker gets the summed evaluation");
            }
            try (var dirs = Files.list(tmp.resolve("w" + w))) {
                assertEquals(1, dirs.count(), "one run directory for the group");
            }
            List<JsonNode> steps = records(r0.runDir(), "train");
            assertEquals(STEPS, steps.size());
            for (int s = 0; s < STEPS; s++) {
                JsonNode a = oneSteps.get(s);
                JsonNode b = steps.get(s);
                assertEquals(a.get("loss").asDouble(), b.get("loss").asDouble(), 2e-5, "W=" + w + " step " + (s + 1) + " loss");
                assertEquals(a.get("crossEntropy").asDouble(), b.get("crossEntropy").asDouble(), 2e-5);
                assertEquals(a.get("zLoss").asDouble(), b.get("zLoss").asDouble(), 1e-6, "z-loss summed over workers");
                assertEquals(a.get("accuracy").asDouble(), b.get("accuracy").asDouble(), 1e-9);
                assertEquals(a.get("expertLoad").toString(), b.get("expertLoad").toString(), "expert load summed");
                for (int layer = 0; layer < a.get("balance").size(); layer++) {
                    JsonNode ba = a.get("balance").get(layer);
                    JsonNode bb = b.get("balance").get(layer);
                    assertEquals(ba.get("loadMaxOverMean").asDouble(), bb.get("loadMaxOverMean").asDouble(), 1e-12);
                    assertEquals(ba.get("droppedPercent").asDouble(), bb.get("droppedPercent").asDouble(), 1e-12);
                    assertEquals(ba.get("entropy").asDouble(), bb.get("entropy").asDouble(), 1e-5,
                            "router entropy summed over workers");
                }
                assertEquals(a.has("expertSimilarity"), b.has("expertSimilarity"));
                if (a.has("expertSimilarity")) {
                    for (int layer = 0; layer < a.get("expertSimilarity").size(); layer++) {
                        assertEquals(a.get("expertSimilarity").get(layer).asDouble(),
                                b.get("expertSimilarity").get(layer).asDouble(), 1e-5,
                                "W=" + w + " expert similarity over every worker's experts");
                    }
                }
                assertEquals(a.get("gradNorm").asDouble(), b.get("gradNorm").asDouble(), 1e-4 * a.get("gradNorm").asDouble());
                assertTrue(b.get("phaseMs").get("all_reduce").asDouble() > 0, "W workers all-reduce");
            }
            ObjectMapper json = new ObjectMapper();
            assertEquals(json.readTree(one.runDir().resolve("summary.json").toFile()).get("parameters").asLong(),
                    json.readTree(r0.runDir().resolve("summary.json").toFile()).get("parameters").asLong(),
                    "the summary counts the whole model's parameters");
            JsonNode placement = records(r0.runDir(), "placement").get(0);
            assertEquals(w, placement.get("workers").asInt());
            assertEquals(w, placement.get("expertsByWorker").size());
            assertEquals(one.testLoss(), r0.testLoss(), 1e-4, "W=" + w + " test loss");
            assertEquals(one.testAccuracy(), r0.testAccuracy(), 0.011, "W=" + w + " test accuracy (at most one example apart)");
            assertEquals(one.validationAccuracy(), r0.validationAccuracy(), 0.011);
            System.out.printf("W=%d: test loss %.6f vs one worker %.6f%n", w, r0.testLoss(), one.testLoss());
        }
    }

    /**
     * Partitioned data (each worker holds only its part, as a Spark partition gives it): the
     * workers train, the loss falls, the run is deterministic, and the evaluation covers every
     * part.
     */
    @Test
    void workersTrainOnTheirOwnParts() throws Exception {
        io.roundhouse.worker.data.DataSplits all = io.roundhouse.worker.data.FashionMnist.load(data);
        int[] cuts = {0, 380, 700};        // uneven parts: 380 and 320 training examples
        int[] testCuts = {0, 60, 101};     // 60 and 41 test examples
        java.util.function.BiFunction<Integer, Trainer, Trainer> part = (rank, t) -> t.withPartition(
                new io.roundhouse.worker.data.DataSplits(
                        all.train().subset("train", java.util.stream.IntStream.range(0, 700).toArray(), cuts[rank],
                                cuts[rank + 1] - cuts[rank]),
                        all.test().subset("test", java.util.stream.IntStream.range(0, 101).toArray(), testCuts[rank],
                                testCuts[rank + 1] - testCuts[rank])));
        List<Trainer.Result> a = TrainerGroups.train(config(tmp.resolve("parts-a"), 2), 2, tmp.resolve("aeron"), "pa", part);
        List<Trainer.Result> b = TrainerGroups.train(config(tmp.resolve("parts-b"), 2), 2, tmp.resolve("aeron"), "pb", part);
        assertEquals(a.get(0).parameterDigest(), b.get(0).parameterDigest(), "deterministic");
        assertEquals(a.get(0).testLoss(), a.get(1).testLoss(), "every worker gets the summed evaluation");
        List<JsonNode> steps = records(a.get(0).runDir(), "train");
        assertEquals(STEPS, steps.size());
        assertTrue(steps.get(STEPS - 1).get("loss").asDouble() < steps.get(0).get("loss").asDouble(), "the loss falls");
        // 99 validation examples: 49 from one part, 50 from the other; the epoch is as long as the smaller part allows.
        assertTrue(a.get(0).testAccuracy() > 0 && a.get(0).testAccuracy() <= 1);
    }

    @Test
    void sameSeedSameWorkersSameBits() throws Exception {
        String a = train(2, tmp.resolve("a"), "a").get(0).parameterDigest();
        String b = train(2, tmp.resolve("b"), "b").get(0).parameterDigest();
        assertEquals(a, b, "two runs with the same seed and W=2 give bit-identical parameters");
    }
}
