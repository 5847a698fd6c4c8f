package io.roundhouse.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.roundhouse.worker.checkpoint.CheckpointException;
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
 * DESIGN invariant: a run resumed from a checkpoint continues bit-identically to one that was not
 * interrupted (one worker and two); a checkpoint written by two workers resumes on one and on
 * three; a damaged shard, an incomplete checkpoint and another model's checkpoint are refused with
 * the file named.
 */
@Timeout(240)
class CheckpointTest {
    private static final int STEPS = 20;

    @TempDir
    static Path tmp;

    static Path data;

    @BeforeAll
    static void fixture() throws Exception {
        data = IdxFixtures.write(tmp.resolve("data"), 500, 60, 8);
    }

    private static Map<String, String> config(Path out) {
        Map<String, String> m = new HashMap<>();
        m.put("data.dir", data.toString());
        m.put("data.validationExamples", "60");
        m.put("model.dim", "16");
        m.put("model.experts", "4");
        m.put("model.expertHidden", "12");
        m.put("model.capacityFactor", "0");
        m.put("train.maxSteps", String.valueOf(STEPS));
        m.put("train.batchSize", "30");   // 440 examples: 14 steps an epoch, so step 8 is mid-epoch
        m.put("train.warmupSteps", "3");
        m.put("train.evalBatchSize", "20");
        m.put("checkpoint.everySteps", "8");
        m.put("checkpoint.keep", "0");
        m.put("output.dir", out.toString());
        m.put("backend", "cpu");
        return m;
    }

    private static Path runDir(Trainer.Result r) {
        return r.runDir();
    }

    @Test
    void oneWorkerResumesBitIdentically() throws Exception {
        Trainer.Result whole = TrainerGroups.train(config(tmp.resolve("a")), 1, tmp.resolve("aeron"), "a").get(0);
        Path ckpts = runDir(whole).resolve("checkpoints");
        for (String s : List.of("step-00000008", "step-00000016", "step-00000020")) {
            assertTrue(Files.exists(ckpts.resolve(s).resolve("manifest.json")), s);
        }
        Map<String, String> resume = config(tmp.resolve("a-resumed"));
        resume.put("train.resume", ckpts.resolve("step-00000008").toString());
        Trainer.Result resumed = TrainerGroups.train(resume, 1, tmp.resolve("aeron"), "a2").get(0);
        assertEquals(whole.parameterDigest(), resumed.parameterDigest(), "resumed at step 8 of 20: the same bits");
        assertEquals(STEPS, resumed.steps());
        List<String> lines = Files.readAllLines(runDir(resumed).resolve("metrics.jsonl"));
        JsonNode first = new ObjectMapper().readTree(lines.get(1));
        assertEquals("resume", first.get("type").asText());
        assertEquals(8, first.get("step").asInt());
        assertEquals("[]", first.get("changed").toString());

        // The precision is recorded, not a shape: a checkpoint resumes in the other one, and says so.
        JsonNode manifest = new ObjectMapper().readTree(ckpts.resolve("step-00000016/manifest.json").toFile());
        assertEquals("fp32", manifest.get("settings").get("model.precision").asText());
        Map<String, String> bf16 = config(tmp.resolve("a-bf16"));
        bf16.put("train.resume", ckpts.resolve("step-00000016").toString());
        bf16.put("model.precision", "bf16");
        Trainer.Result inBf16 = TrainerGroups.train(bf16, 1, tmp.resolve("aeron"), "a3").get(0);
        JsonNode record = new ObjectMapper().readTree(Files.readAllLines(runDir(inBf16).resolve("metrics.jsonl")).get(1));
        assertEquals("[\"model.precision = bf16 here, fp32 in the checkpoint\"]", record.get("changed").toString());
        assertNotEquals(whole.parameterDigest(), inBf16.parameterDigest(), "the last 4 steps ran in bf16");
    }

    @Test
    void twoWorkersResumeOnTwoOneAndThree() throws Exception {
        List<Trainer.Result> whole = TrainerGroups.train(config(tmp.resolve("w2")), 2, tmp.resolve("aeron"), "w2");
        Path ckpts = runDir(whole.get(0)).resolve("checkpoints");
        JsonNode manifest = new ObjectMapper().readTree(ckpts.resolve("step-00000016/manifest.json").toFile());
        assertEquals(2, manifest.get("workers").asInt());
        assertEquals("[0,1]", manifest.get("shards").get(0).get("experts").toString());
        assertEquals("[2,3]", manifest.get("shards").get(1).get("experts").toString());
        double onTwo = Double.NaN;
        for (int w : new int[] {2, 1, 3}) {
            Map<String, String> resume = config(tmp.resolve("w2-on-" + w));
            resume.put("train.resume", ckpts.toString());  // a folder of checkpoints: the latest complete one
            resume.put("train.maxSteps", "24");
            Trainer.Result r = TrainerGroups.train(resume, w, tmp.resolve("aeron"), "w2on" + w).get(0);
            assertEquals(24, r.steps());
            System.out.printf("W=2 checkpoint at step 20 resumed on W=%d: test loss %.6f%n", w, r.testLoss());
            if (w == 2) {
                onTwo = r.testLoss();
            } else {
                assertEquals(onTwo, r.testLoss(), 1e-4, "dropless: W workers continue as two would");
            }
            if (w == 2) {
                // The uninterrupted 24-step run has another LR schedule; compare against resuming twice instead.
                Trainer.Result again = TrainerGroups.train(resume, 2, tmp.resolve("aeron"), "w2again").get(0);
                assertEquals(r.parameterDigest(), again.parameterDigest(), "resuming is deterministic");
            }
        }
    }

    @Test
    void aStopFileInTheRunDirectoryStopsWithACheckpoint() throws Exception {
        Path run = Files.createDirectories(tmp.resolve("stop-run"));
        Files.writeString(run.resolve("STOP"), "");
        Trainer.Result r = new Trainer(io.roundhouse.worker.config.JobConfig.of(config(tmp.resolve("stop"))),
                new java.io.PrintStream(new java.io.ByteArrayOutputStream()), null, run).run();
        assertEquals(1, r.steps(), "stopped after the first step");
        assertTrue(Files.exists(run.resolve("checkpoints/step-00000001/manifest.json")), "with a checkpoint there");
        assertTrue(new ObjectMapper().readTree(run.resolve("summary.json").toFile()).get("stoppedEarly").asBoolean());
        assertTrue(!Files.exists(run.resolve("STOP")), "the request is taken");
    }

    @Test
    void onlyTheNewestCheckpointsAreKept() throws Exception {
        Map<String, String> m = config(tmp.resolve("keep"));
        m.put("checkpoint.keep", "2");
        Trainer.Result r = TrainerGroups.train(m, 2, tmp.resolve("aeron"), "keep").get(0);
        try (var s = Files.list(runDir(r).resolve("checkpoints"))) {
            assertEquals(List.of("step-00000016", "step-00000020"),
                    s.map(p -> p.getFileName().toString()).sorted().toList());
        }
    }

    @Test
    void twoWorkersResumeBitIdentically() throws Exception {
        List<Trainer.Result> whole = TrainerGroups.train(config(tmp.resolve("b")), 2, tmp.resolve("aeron"), "b");
        Map<String, String> resume = config(tmp.resolve("b-resumed"));
        resume.put("train.resume", runDir(whole.get(0)).resolve("checkpoints/step-00000008").toString());
        List<Trainer.Result> resumed = TrainerGroups.train(resume, 2, tmp.resolve("aeron"), "b2");
        assertEquals(whole.get(0).parameterDigest(), resumed.get(0).parameterDigest(),
                "two workers resumed at step 8 of 20: the same bits");
    }

    @Test
    void damagedIncompleteAndForeignCheckpointsAreRefused() throws Exception {
        Trainer.Result whole = TrainerGroups.train(config(tmp.resolve("c")), 1, tmp.resolve("aeron"), "c").get(0);
        Path step8 = runDir(whole).resolve("checkpoints/step-00000008");

        Map<String, String> other = config(tmp.resolve("c-other"));
        other.put("train.resume", step8.toString());
        other.put("model.dim", "24");
        CheckpointException e = assertThrows(CheckpointException.class,
                () -> TrainerGroups.train(other, 1, tmp.resolve("aeron"), "c1"));
        assertTrue(e.getMessage().contains("was written by another model: model.dim = 24 here, 16 in the checkpoint"),
                e.getMessage());
        assertTrue(e.getMessage().contains(step8.resolve("manifest.json").toString()), "names the file: " + e.getMessage());

        Path shard = step8.resolve("shard-0.bin");
        byte[] bytes = Files.readAllBytes(shard);
        bytes[bytes.length / 2] ^= 0x40;
        Files.write(shard, bytes);
        Map<String, String> resume = config(tmp.resolve("c-corrupt"));
        resume.put("train.resume", step8.toString());
        e = assertThrows(CheckpointException.class, () -> TrainerGroups.train(resume, 1, tmp.resolve("aeron"), "c2"));
        assertTrue(e.getMessage().contains("checkpoint shard " + shard + " is corrupt"), e.getMessage());

        Files.delete(step8.resolve("manifest.json"));
        Map<String, String> incomplete = config(tmp.resolve("c-incomplete"));
        incomplete.put("train.resume", tmp.resolve("nowhere").toString());
        e = assertThrows(CheckpointException.class,
                () -> TrainerGroups.train(incomplete, 1, tmp.resolve("aeron"), "c3"));
        assertTrue(e.getMessage().contains("no complete checkpoint there"), e.getMessage());
    }
}
