package io.roundhouse.worker;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.roundhouse.kernels.cpu.CpuBackend;
import io.roundhouse.worker.checkpoint.CheckpointException;
import io.roundhouse.worker.checkpoint.CheckpointStore;
import io.roundhouse.worker.train.Generator;
import io.roundhouse.worker.train.Trainer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The language model through the trainer: a resumed run equals an uninterrupted one bit for bit
 * (one worker and two), a checkpoint of two workers resumes on three, and generation from a
 * checkpoint is fixed by its seed; a classifier's checkpoint is refused by generate.
 */
@Timeout(240)
class LanguageModelTrainingTest {
    private static final int STEPS = 12;

    @TempDir
    static Path tmp;

    static Path text;

    @BeforeAll
    static void corpus() throws Exception {
        text = LmFixtures.corpus(tmp.resolve("text.txt"), 3, 12_000, 8);
    }

    private static Map<String, String> config(Path out) {
        Map<String, String> m = LmFixtures.config(text, out, STEPS);
        m.put("model.kvHeads", "1");
        return m;
    }

    private static Path checkpoints(Trainer.Result r) {
        return r.runDir().resolve("checkpoints");
    }

    @Test
    void resumeEqualsAnUninterruptedRunAndGenerationIsFixedBySeed() throws Exception {
        for (int w : new int[] {1, 2}) {
            Trainer.Result whole = TrainerGroups.train(config(tmp.resolve("whole" + w)), w, tmp.resolve("aeron"), "lw" + w)
                    .get(0);
            assertTrue(Double.isNaN(whole.testAccuracy()), "a language model reports bits per byte, not accuracy");
            assertTrue(whole.bitsPerByte() > 0 && whole.bitsPerByte() < 8, "bits per byte " + whole.bitsPerByte());
            Map<String, String> resume = config(tmp.resolve("resumed" + w));
            resume.put("train.resume", checkpoints(whole).resolve("step-00000006").toString());
            Trainer.Result resumed = TrainerGroups.train(resume, w, tmp.resolve("aeron"), "lr" + w).get(0);
            assertEquals(whole.parameterDigest(), resumed.parameterDigest(), "W=" + w + ": resumed at step 6 of "
                    + STEPS + ", the same bits");
            if (w == 2) {
                // Two workers' checkpoint on three workers: the same model, summed in another order.
                Map<String, String> three = config(tmp.resolve("three"));
                three.put("train.resume", checkpoints(whole).resolve("step-00000006").toString());
                Trainer.Result r3 = TrainerGroups.train(three, 3, tmp.resolve("aeron"), "l3").get(0);
                assertEquals(whole.testLoss(), r3.testLoss(), 1e-4, "W=2 resumed on W=3");
            }
        }
        Path ckpt = checkpoints(TrainerGroups.train(config(tmp.resolve("gen")), 1, tmp.resolve("aeron"), "lg").get(0));
        byte[] prompt = "1 and the".getBytes(StandardCharsets.US_ASCII);
        byte[] a;
        byte[] b;
        byte[] c;
        try (Generator g = new Generator(new CpuBackend(), ckpt.toString(), CheckpointStore::local)) {
            a = g.generate(prompt, 40, 0.8, 0.95, 7);
            b = g.generate(prompt, 40, 0.8, 0.95, 7);
            c = g.generate(prompt, 40, 0.8, 0.95, 8);
        }
        try (Generator g = new Generator(new CpuBackend(), ckpt.resolve("step-00000012").toString(),
                CheckpointStore::local)) {
            assertArrayEquals(a, g.generate(prompt, 40, 0.8, 0.95, 7), "a new generator, the same seed: the same text");
        }
        assertEquals(40, a.length);
        assertArrayEquals(a, b, "one seed, one text");
        assertFalse(java.util.Arrays.equals(a, c), "another seed, another text");
    }

    @Test
    void generateRefusesAClassifierCheckpoint() throws Exception {
        Path data = IdxFixtures.write(tmp.resolve("images"), 200, 20, 5);
        Map<String, String> m = new HashMap<>();
        m.put("data.dir", data.toString());
        m.put("data.validationExamples", "20");
        m.put("model.dim", "8");
        m.put("model.expertHidden", "8");
        m.put("train.maxSteps", "2");
        m.put("train.batchSize", "20");
        m.put("checkpoint.everySteps", "2");
        m.put("output.dir", tmp.resolve("cls").toString());
        m.put("backend", "cpu");
        Trainer.Result r = TrainerGroups.train(m, 1, tmp.resolve("aeron"), "cls").get(0);
        CheckpointException e = assertThrows(CheckpointException.class,
                () -> new Generator(new CpuBackend(), checkpoints(r).toString(), CheckpointStore::local));
        assertTrue(e.getMessage().contains("is not a language model's"), e.getMessage());
        try (Stream<Path> s = Files.list(checkpoints(r))) {
            assertEquals(1, s.count());
        }
    }
}
