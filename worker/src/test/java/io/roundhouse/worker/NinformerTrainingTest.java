package io.roundhouse.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.roundhouse.worker.checkpoint.CheckpointException;
import io.roundhouse.worker.config.ConfigException;
import io.roundhouse.worker.config.JobConfig;
import io.roundhouse.worker.train.Trainer;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code model.kind = ninformer} through the trainer: two workers train it (every patch a routed
 * token: kept copies = MoE layers × images × P × K), a run resumed from its checkpoint ends with the
 * uninterrupted run's bits, a classifier refuses its checkpoint, and the keys that do not apply are
 * refused both ways.
 */
class NinformerTrainingTest {
    @TempDir
    Path tmp;

    private Map<String, String> config(Path data, Path out) {
        Map<String, String> m = NinformerFixtures.config(data, out);
        m.put("model.moeEvery", "2");
        m.put("train.maxSteps", "16");
        m.put("checkpoint.everySteps", "8");
        m.put("log.everySteps", "4");
        return m;
    }

    @Test
    void twoWorkersTrainItAndAResumeEndsWithTheSameBits() throws Exception {
        Path data = IdxFixtures.write(tmp.resolve("data"), 500, 60, 8);
        Trainer.Result whole = TrainerGroups.train(config(data, tmp.resolve("a")), 2, tmp.resolve("aeron"), "nin").get(0);
        assertEquals(16, whole.steps());
        ObjectMapper json = new ObjectMapper();
        int trainLines = 0;
        for (String line : Files.readAllLines(whole.runDir().resolve("metrics.jsonl"))) {
            JsonNode n = json.readTree(line);
            if (!n.get("type").asText().equals("train")) {
                continue;
            }
            trainLines++;
            assertEquals(1, n.get("expertLoad").size(), "moeEvery 2 of 2 blocks: one MoE layer");
            int kept = 0;
            for (JsonNode e : n.get("expertLoad").get(0)) {
                kept += e.asInt();
            }
            assertEquals(30 * 16 * 2, kept, "dropless: every one of 30 images' 16 patches goes to 2 experts");
            assertEquals(2.0, n.get("balance").get(0).get("expertsPerToken").asDouble(), 1e-9,
                    "experts per routed patch");
            assertTrue(n.get("phaseMs").get("mixer").asDouble() > 0, "the gating unit's time is booked");
        }
        assertEquals(16, trainLines);
        assertTrue(whole.testAccuracy() > 0.25, "it learns the fixture: " + whole.testAccuracy());
        JsonNode manifest = json.readTree(whole.runDir().resolve("checkpoints/step-00000008/manifest.json").toFile());
        assertEquals("ninformer", manifest.get("model").get("model.kind").asText());
        assertEquals("7", manifest.get("model").get("model.patchSize").asText());

        Map<String, String> resume = config(data, tmp.resolve("b"));
        resume.put("train.resume", whole.runDir().resolve("checkpoints/step-00000008").toString());
        Trainer.Result resumed = TrainerGroups.train(resume, 2, tmp.resolve("aeron"), "nin2").get(0);
        assertEquals(whole.parameterDigest(), resumed.parameterDigest(), "resumed at step 8 of 16: the same bits");

        Map<String, String> classifier = config(data, tmp.resolve("c"));
        for (String k : List.of("model.kind", "model.patchSize", "model.tokenHidden", "model.channelHidden",
                "model.moeEvery")) {
            classifier.remove(k);
        }
        classifier.put("train.resume", whole.runDir().resolve("checkpoints/step-00000008").toString());
        CheckpointException e = assertThrows(CheckpointException.class,
                () -> TrainerGroups.train(classifier, 1, tmp.resolve("aeron"), "nin3"));
        assertTrue(e.getMessage().contains("model.kind = classifier here, ninformer in the checkpoint"),
                e.getMessage());
    }

    @Test
    void theConsoleDescribesItAndWhereItsExportIs() throws Exception {
        Path data = IdxFixtures.write(tmp.resolve("data"), 200, 60, 3);
        Map<String, String> m = config(data, tmp.resolve("one"));
        m.put("train.maxSteps", "2");
        ByteArrayOutputStream console = new ByteArrayOutputStream();
        new Trainer(JobConfig.of(m), new PrintStream(console, true)).run();
        String text = console.toString();
        assertTrue(text.contains("model: NiNformer: 28×28 image(s) of 1 channel(s) in 16 patches of 7×7"), text);
        assertTrue(text.contains("export: ") && !text.contains("no export"), text);
    }

    @Test
    void keysThatDoNotApplyAreRefusedBothWays() throws Exception {
        Path data = IdxFixtures.write(tmp.resolve("data"), 200, 60, 3);
        Map<String, String> m = config(data, tmp.resolve("x"));
        m.put("model.heads", "8");
        assertEquals("model.heads = 8, but model.kind=ninformer ignores it: the NiNformer mixes its patches with "
                + "MLPs, not attention; remove it, or set model.kind=lm to train the language model", refusal(m));
        m = config(data, tmp.resolve("x"));
        m.put("stn.tune", "dropout.input");
        m.put("stn.layers", "router");
        assertTrue(refusal(m).startsWith("stn.tune includes dropout.input, which the NiNformer does not have; it can "
                + "tune dropout.block, router.jitter, loss.loadBalance, loss.zLoss"), refusal(m));
        m = config(data, tmp.resolve("x"));
        m.put("stn.tune", "dropout.block");  // stn.layers' default holds the head, an image's, not a patch's
        assertTrue(refusal(m).startsWith("stn.layers includes head, which the NiNformer does not have; choose from "
                + "embed, router, experts"), refusal(m));
        m = config(data, tmp.resolve("x"));
        m.put("model.patchSize", "5");
        assertEquals("model.patchSize = 5 does not divide the image side 28; choose one of 1, 2, 4, 7, 14, 28",
                refusal(m));
        Map<String, String> classifier = new HashMap<>(Map.of("data.dir", data.toString(), "model.patchSize", "7",
                "output.dir", tmp.resolve("y").toString()));
        assertEquals("model.patchSize = 7, but model.kind=classifier ignores it: only the NiNformer cuts images into "
                + "patches; remove it, or set model.kind=ninformer", refusal(classifier));
        assertTrue(!Files.exists(tmp.resolve("x")) && !Files.exists(tmp.resolve("y")), "nothing written");
    }

    private static String refusal(Map<String, String> m) {
        return assertThrows(ConfigException.class,
                () -> new Trainer(JobConfig.of(m), new PrintStream(new ByteArrayOutputStream())).run()).getMessage();
    }
}
