package io.roundhouse.worker;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.cpu.CpuBackend;
import io.roundhouse.worker.checkpoint.CheckpointStore;
import io.roundhouse.worker.config.JobConfig;
import io.roundhouse.worker.data.FashionMnist;
import io.roundhouse.worker.data.LabeledData;
import io.roundhouse.worker.exit.EarlyExitRun;
import io.roundhouse.worker.model.ImageModel;
import io.roundhouse.worker.model.Param;
import io.roundhouse.worker.model.ParamStore;
import io.roundhouse.worker.robust.RobustEvaluation;
import io.roundhouse.worker.train.AdamW;
import io.roundhouse.worker.train.ModelCheckpoint;
import io.roundhouse.worker.train.Trainer;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Adversarial training through the trainer (AdvMoE with two expert-parallel workers), its resume,
 * the robust evaluation and the early exits on its checkpoint, and the optimizer's partial steps.
 */
class AdversarialTrainingTest {
    @TempDir
    Path tmp;

    private static Map<String, String> config(Path data, Path out) {
        Map<String, String> m = NinformerFixtures.config(data, out);
        m.put("model.dropout.input", "0");
        m.put("model.dropout.block", "0");
        m.put("adv.training", "advmoe");
        m.put("adv.steps", "2");
        m.put("adv.epsilon", "0.03");
        m.put("train.maxSteps", "16");
        m.put("checkpoint.everySteps", "8");
        m.put("log.everySteps", "4");
        return m;
    }

    @Test
    void advMoeTrainsResumesToTheSameBitsAndIsEvaluatedAndGetsExits() throws Exception {
        Path data = IdxFixtures.write(tmp.resolve("data"), 400, 60, 8);
        Trainer.Result whole = TrainerGroups.train(config(data, tmp.resolve("a")), 2, tmp.resolve("aeron"), "adv").get(0);
        assertEquals(16, whole.steps());
        assertTrue(whole.testAccuracy() > 0.2, "it learns the fixture: " + whole.testAccuracy());
        ObjectMapper json = new ObjectMapper();
        for (String line : Files.readAllLines(whole.runDir().resolve("metrics.jsonl"))) {
            JsonNode n = json.readTree(line);
            if (n.get("type").asText().equals("train")) {
                int kept = 0;
                for (JsonNode e : n.get("expertLoad").get(0)) {
                    kept += e.asInt();
                }
                assertEquals(2 * 30 * 16 * 2, kept, "the clean images and their copies, 16 patches, 2 experts each");
            }
        }

        Map<String, String> resume = config(data, tmp.resolve("b"));
        resume.put("train.resume", whole.runDir().resolve("checkpoints/step-00000008").toString());
        Trainer.Result resumed = TrainerGroups.train(resume, 2, tmp.resolve("aeron"), "adv2").get(0);
        assertEquals(whole.parameterDigest(), resumed.parameterDigest(), "resumed at step 8 of 16: the same bits");

        String checkpoint = whole.runDir().resolve("checkpoints").toString();
        try (Backend be = new CpuBackend()) {
            ImageModel model = ModelCheckpoint.open(checkpoint, CheckpointStore::local).imageModel(be, 20, "test");
            LabeledData test = (LabeledData) FashionMnist.load(data).test();
            RobustEvaluation.Row[] rows = RobustEvaluation.run(model, test, 60, 20, 0.3, 0.05, new int[] {3, 6},
                    true, 1, done -> { });
            assertEquals(3, rows.length);
            assertTrue(rows[1].accuracy() <= rows[0].accuracy() && rows[2].accuracy() <= rows[0].accuracy(),
                    "an attack of 0.3 does not help: clean " + rows[0].accuracy() + ", PGD " + rows[1].accuracy());
            assertTrue(rows[2].routerChangedMean() > 0, "some patches change experts under an attack of 0.3");

            Map<String, String> exits = new HashMap<>();
            exits.put("data.dir", data.toString());
            exits.put("data.validationExamples", "60");
            exits.put("output.dir", tmp.resolve("exits").toString());
            exits.put("exit.lambda", "0,5");
            exits.put("exit.epochs", "2");
            exits.put("exit.alternateSteps", "3");
            exits.put("train.batchSize", "20");
            ByteArrayOutputStream console = new ByteArrayOutputStream();
            Path run = EarlyExitRun.run(JobConfig.of(exits), be, checkpoint, CheckpointStore::local,
                    new PrintStream(console, true, StandardCharsets.UTF_8));
            String out = console.toString(StandardCharsets.UTF_8);
            assertTrue(out.contains("lambda 0 ") && out.contains("lambda 5 "), out);
            JsonNode last = null;
            int points = 0;
            for (String line : Files.readAllLines(run.resolve("metrics.jsonl"))) {
                JsonNode n = json.readTree(line);
                if (n.get("type").asText().equals("earlyExit")) {
                    points++;
                    last = n;
                    double shares = 0;
                    for (JsonNode s : n.get("exitShares")) {
                        shares += s.asDouble();
                    }
                    assertEquals(1, shares, 1e-9, "every test image leaves somewhere");
                }
            }
            assertEquals(2, points);
            assertTrue(last.get("flopsFraction").asDouble() < 1, "at lambda 5 compute is dear: images leave early ("
                    + last + ")");
            assertTrue(Files.readString(run.resolve("report.html")).contains("accuracy against compute"),
                    "the report draws the curve");
        }
    }

    @Test
    void adamWStepsOnlyTheParametersItIsGivenAndCountsStepsWhenAsked() {
        Backend be = new CpuBackend();
        ParamStore ps = new ParamStore(be, 1);
        Param router = ps.normal("block0.moe.router.w", 0.1, true, 3, 2);
        Param expert = ps.normal("block0.moe.experts.w1", 0.1, true, 3, 2);
        be.fill(router.grad(), 0.5f);
        be.fill(expert.grad(), 0.5f);
        AdamW opt = new AdamW(be, ps, 0.9, 0.999, 1e-8, 0.0, 0);
        float[] routerBefore = ps.read(router);
        float[] expertBefore = ps.read(expert);
        opt.step(0.1, 1.0, p -> !p.name().contains(".router."), true);
        assertArrayEquals(routerBefore, ps.read(router), "the frozen routers do not move");
        assertNotEquals(expertBefore[0], ps.read(expert)[0]);
        assertEquals(1, opt.steps());
        opt.step(0.1, 1.0, p -> p.name().contains(".router."), false);
        assertNotEquals(routerBefore[0], ps.read(router)[0]);
        assertEquals(1, opt.steps(), "the routers' step continues the same optimizer step");
    }
}
