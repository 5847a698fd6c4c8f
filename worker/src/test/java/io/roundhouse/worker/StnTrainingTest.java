package io.roundhouse.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
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
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Self-Tuning Network training through the trainer: the hypergradient summed over W workers is the
 * one-worker hypergradient (and so are the hyperparameters it moves to); a run resumed from a
 * checkpoint continues bit-identically (the hyperparameters and their optimizer are in the
 * checkpoint); the metrics carry the trajectory and the run has its report; bad settings are
 * refused naming the key.
 */
@Timeout(180)
class StnTrainingTest {
    private static final int STEPS = 16;

    @TempDir
    static Path tmp;

    static Path data;

    @BeforeAll
    static void fixture() throws Exception {
        data = IdxFixtures.write(tmp.resolve("data"), 700, 101, 9);
    }

    private static Map<String, String> config(Path out) {
        Map<String, String> m = new HashMap<>();
        m.put("data.dir", data.toString());
        m.put("data.validationExamples", "99");
        m.put("model.dim", "16");
        m.put("model.experts", "6");
        m.put("model.expertHidden", "12");
        m.put("model.capacityFactor", "0");  // dropless: the capacity rule is per worker
        m.put("model.routerJitter", "0.05");
        m.put("train.maxSteps", String.valueOf(STEPS));
        m.put("train.batchSize", "30");
        m.put("train.warmupSteps", "3");
        m.put("train.evalBatchSize", "16");
        m.put("augment.shift", "1");
        m.put("stn.tune", "dropout.input,dropout.block,router.jitter,loss.loadBalance,loss.zLoss,augment.shift");
        m.put("stn.layers", "embed,router,experts,head");
        m.put("stn.warmupSteps", "4");
        m.put("stn.trainSteps", "2");
        m.put("stn.validSteps", "2");
        m.put("stn.lr", "0.05");
        m.put("output.dir", out.toString());
        m.put("log.everySteps", "4");
        m.put("backend", "cpu");
        return m;
    }

    private static List<JsonNode> records(Path runDir, String type) throws Exception {
        return TrainerGroups.records(runDir, type);
    }

    @Test
    void wWorkersComputeTheOneWorkerHypergradient() throws Exception {
        Trainer.Result one = TrainerGroups.train(config(tmp.resolve("one")), 1, tmp.resolve("aeron"), "s1").get(0);
        List<JsonNode> oneHyper = records(one.runDir(), "hyper");
        assertEquals((STEPS - 4) / 2, oneHyper.size(), "hyper steps after steps 6, 8, ..., 16");
        assertEquals(2 * oneHyper.size(), oneHyper.get(oneHyper.size() - 1).get("version").asInt(), "2 per round");
        JsonNode first = oneHyper.get(0).get("lambda");
        JsonNode last = oneHyper.get(oneHyper.size() - 1).get("lambda");
        assertNotEquals(first.toString(), last.toString(), "the hyperparameters move");
        for (int w : new int[] {2, 3}) {
            Trainer.Result r = TrainerGroups.train(config(tmp.resolve("w" + w)), w, tmp.resolve("aeron"), "s" + w).get(0);
            List<JsonNode> hyper = records(r.runDir(), "hyper");
            assertEquals(oneHyper.size(), hyper.size());
            for (int k = 0; k < hyper.size(); k++) {
                for (String field : new String[] {"hypergradient", "lambda", "sigma"}) {
                    JsonNode a = oneHyper.get(k).get(field);
                    JsonNode b = hyper.get(k).get(field);
                    a.fieldNames().forEachRemaining(name -> {
                        double x = a.get(name).asDouble();
                        double y = b.get(name).asDouble();
                        assertEquals(x, y, 1e-4 * Math.max(1e-2, Math.abs(x)), "W=" + w + " " + field + " " + name);
                    });
                }
                assertEquals(oneHyper.get(k).get("validLoss").asDouble(), hyper.get(k).get("validLoss").asDouble(), 1e-5);
            }
            System.out.printf("STN W=%d: final λ %s (one worker %s)%n", w, hyper.get(hyper.size() - 1).get("lambda"),
                    last);
            assertEquals(one.testLoss(), r.testLoss(), 1e-3, "W=" + w + " test loss");
        }
        // The run's records and report.
        JsonNode step = records(one.runDir(), "train").get(STEPS - 1);
        // (a step record's numbers are floats, the STN round's doubles)
        JsonNode trainedWith = oneHyper.get(oneHyper.size() - 2).get("lambda");
        java.util.List<String> names = new java.util.ArrayList<>();
        trainedWith.fieldNames().forEachRemaining(names::add);
        java.util.List<String> written = new java.util.ArrayList<>();
        step.get("hyper").fieldNames().forEachRemaining(written::add);
        assertEquals(names, written);
        trainedWith.fieldNames().forEachRemaining(name -> assertEquals((float) trainedWith.get(name).asDouble(),
                (float) step.get("hyper").get(name).asDouble(),
                "each step record carries the λ it trained with (the last step: λ after step 14's round): " + name));
        JsonNode summary = new ObjectMapper().readTree(one.runDir().resolve("summary.json").toFile());
        assertEquals(last.toString(), summary.get("hyperparameters").toString());
        // The run report (RunReportTest checks in a browser that its charts draw every round).
        String report = Files.readString(one.runDir().resolve("report.html"));
        for (String name : List.of("dropout.input", "dropout.block", "router.jitter", "loss.loadBalance", "loss.zLoss",
                "augment.shift")) {
            assertTrue(report.contains("<h3>" + name + "</h3>"), "the report plots " + name);
        }
        assertTrue(report.contains("\"name\":\"λ\",\"run\":0,\"style\":\"line\""), "with a line");
        String schedules = io.roundhouse.worker.train.StnReport.schedules(List.of(one.runDir(), one.runDir()),
                List.of("a", "b"));
        assertTrue(schedules.startsWith("<svg") && schedules.contains(">loss.zLoss</text>"), schedules);
        assertEquals(2 * 6, schedules.split("<polyline").length - 1, "a line per run and hyperparameter");
    }

    /** More workers than experts: replicas get the copies' perturbations and send back their gradients. */
    @Test
    void replicatedExpertsTakeTheOneWorkerHyperSteps() throws Exception {
        Map<String, String> c = config(tmp.resolve("rep1"));
        c.put("model.experts", "2");
        c.put("model.topK", "1");
        Trainer.Result one = TrainerGroups.train(c, 1, tmp.resolve("aeron"), "rep1").get(0);
        Map<String, String> c3 = new HashMap<>(c);
        c3.put("output.dir", tmp.resolve("rep3").toString());
        Trainer.Result three = TrainerGroups.train(c3, 3, tmp.resolve("aeron"), "rep3").get(0);
        List<JsonNode> a = records(one.runDir(), "hyper");
        List<JsonNode> b = records(three.runDir(), "hyper");
        assertEquals(a.size(), b.size());
        for (int k = 0; k < a.size(); k++) {
            JsonNode ga = a.get(k).get("hypergradient");
            JsonNode gb = b.get(k).get("hypergradient");
            ga.fieldNames().forEachRemaining(name -> assertEquals(ga.get(name).asDouble(), gb.get(name).asDouble(),
                    1e-4 * Math.max(1e-2, Math.abs(ga.get(name).asDouble())), "3 workers over 2 experts: " + name));
        }
        assertEquals(one.testLoss(), three.testLoss(), 1e-3);
    }

    @Test
    void aResumedRunContinuesBitIdentically() throws Exception {
        Map<String, String> c = config(tmp.resolve("whole"));
        c.put("checkpoint.everySteps", "7");  // step 7: between two hyper-step rounds
        c.put("checkpoint.keep", "0");
        Trainer.Result whole = TrainerGroups.train(c, 2, tmp.resolve("aeron"), "rw").get(0);
        Map<String, String> resume = config(tmp.resolve("resumed"));
        resume.put("train.resume", whole.runDir().resolve("checkpoints/step-00000007").toString());
        Trainer.Result resumed = TrainerGroups.train(resume, 2, tmp.resolve("aeron"), "rr").get(0);
        assertEquals(whole.parameterDigest(), resumed.parameterDigest(), "resumed at step 7 of 16: the same bits");
        assertEquals(records(whole.runDir(), "hyper").get(5).toString().replaceAll("\"ms\":[0-9.E-]+", ""),
                records(resumed.runDir(), "hyper").get(4).toString().replaceAll("\"ms\":[0-9.E-]+", ""),
                "the last hyper-step round is the same");

        Map<String, String> plain = config(tmp.resolve("plain"));
        plain.put("stn.tune", "");
        plain.put("train.resume", whole.runDir().resolve("checkpoints/step-00000007").toString());
        Exception e = assertThrows(Exception.class, () -> TrainerGroups.train(plain, 1, tmp.resolve("aeron"), "rp"));
        assertTrue(e.getMessage().contains("stn = "), e.getMessage());
    }

    @Test
    void badSettingsAreRefusedNamingTheKey() throws Exception {
        Map<String, String> c = config(tmp.resolve("bad"));
        c.put("model.dropout.input", "0");
        ConfigException e = assertThrows(ConfigException.class, () -> JobConfig.of(c));
        assertTrue(e.getMessage().contains("model.dropout.input = 0.0 is not inside (0.0, 0.9)"), e.getMessage());

        Map<String, String> layers = config(tmp.resolve("bad"));
        layers.put("stn.layers", "embed,experts,norm");
        e = assertThrows(ConfigException.class, () -> JobConfig.of(layers));
        assertTrue(e.getMessage().contains("'norm' is not one of [embed, attention, router, experts, head]"),
                e.getMessage());

        Map<String, String> attention = config(tmp.resolve("bad"));
        attention.put("stn.layers", "embed,attention");
        e = assertThrows(ConfigException.class, () -> new Trainer(JobConfig.of(attention),
                new PrintStream(new ByteArrayOutputStream())).run());
        assertTrue(e.getMessage().contains("stn.layers includes attention, which the classifier does not have"),
                e.getMessage());

        Map<String, String> decay = config(tmp.resolve("bad"));
        decay.put("stn.tune", "dropout.input,train.weightDecay");
        e = assertThrows(ConfigException.class, () -> JobConfig.of(decay));
        assertTrue(e.getMessage().contains("train.weightDecay is not built yet"), e.getMessage());

        Map<String, String> typo = config(tmp.resolve("bad"));
        typo.put("stn.tune", "dropout.inptu");
        e = assertThrows(ConfigException.class, () -> JobConfig.of(typo));
        assertTrue(e.getMessage().contains("'dropout.inptu' is not one of"), e.getMessage());

        Map<String, String> noValidation = config(tmp.resolve("bad"));
        noValidation.put("data.validationExamples", "0");
        e = assertThrows(ConfigException.class, () -> new Trainer(JobConfig.of(noValidation),
                new PrintStream(new ByteArrayOutputStream())).run());
        assertTrue(e.getMessage().contains("stn.tune needs a validation split"), e.getMessage());
        assertTrue(!Files.exists(tmp.resolve("bad")) || Files.list(tmp.resolve("bad")).findAny().isEmpty(),
                "nothing written");
    }
}
