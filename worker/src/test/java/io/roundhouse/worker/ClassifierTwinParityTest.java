package io.roundhouse.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.kernels.cpu.CpuBackend;
import io.roundhouse.worker.checkpoint.CheckpointStore;
import io.roundhouse.worker.model.MoeClassifier;
import io.roundhouse.worker.train.ModelCheckpoint;
import io.roundhouse.worker.train.Trainer;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A classifier trained 2 steps leaves its export in the run directory, and the plain-PyTorch twin
 * ({@code scripts/roundhouse_classifier_twin.py}) run on it computes the logits of the model its
 * checkpoint loads to (evaluation mode) to 1e-4 of the largest logit. Skips when
 * {@code /usr/bin/python3} or its {@code torch} is missing.
 */
@Timeout(300)
class ClassifierTwinParityTest {
    private static final String PYTHON = "/usr/bin/python3";
    private static final int N = 16;
    private static final double MIN_MARGIN = 1e-3;

    @TempDir
    static Path tmp;

    static Path twin;

    @BeforeAll
    static void setUp() throws Exception {
        Assumptions.assumeTrue(Files.isExecutable(Path.of(PYTHON)), PYTHON + " is missing: the PyTorch twin cannot run");
        Process p = new ProcessBuilder(PYTHON, "-c", "import torch").redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        Assumptions.assumeTrue(p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0,
                PYTHON + " has no torch module (install python3-torch): " + out.strip());
        twin = TwinParityTest.repoRoot().resolve("scripts/roundhouse_classifier_twin.py");
    }

    @Test
    void geluLayerNormSoftmaxTopK() throws Exception {
        Map<String, String> m = ClassifierFixtures.config(tmp.resolve("images"), tmp.resolve("run-gelu"));
        m.put("model.activation", "gelu");
        m.put("model.norm", "layernorm");
        m.put("model.gate", "softmax_topk");
        check("gelu", m);
    }

    @Test
    void swigluRmsNormTopKSoftmax() throws Exception {
        Map<String, String> m = ClassifierFixtures.config(tmp.resolve("images"), tmp.resolve("run-swiglu"));
        m.put("model.activation", "swiglu");
        m.put("model.norm", "rmsnorm");
        m.put("model.gate", "topk_softmax");
        check("swiglu", m);
    }

    @Test
    void sigmoidRouterWithItsSelectionBiasAndSharedExperts() throws Exception {
        Map<String, String> m = ClassifierFixtures.config(tmp.resolve("images"), tmp.resolve("run-sigmoid"));
        m.put("model.activation", "swiglu");
        m.put("model.norm", "rmsnorm");
        m.put("model.sharedExperts", "1");
        m.put("model.router", "sigmoid");
        m.put("model.routerBiasRate", "0.05");
        check("sigmoid", m);
    }

    private static void check(String tag, Map<String, String> config) throws Exception {
        Trainer.Result r = TrainerGroups.train(config, 1, tmp.resolve("aeron"), tag).get(0);
        Path export = r.runDir().resolve("export");
        Backend be = new CpuBackend();
        MoeClassifier model = ModelCheckpoint.open(r.runDir().resolve("checkpoints").toString(),
                CheckpointStore::local).classifier(be, N, "(test)");
        int inputs = model.spec().inputs();
        int classes = model.spec().classes();
        // Near-ties between the k-th and (k+1)-th router logit could send a row to another expert
        // under a rounding difference: batches are drawn by seed, in order, until the twin reports
        // every margin at least MIN_MARGIN.
        for (long seed = 1; seed <= 20; seed++) {
            float[] x = new float[N * inputs];
            SplittableRandom rnd = new SplittableRandom(seed);
            for (int i = 0; i < x.length; i++) {
                x[i] = (float) rnd.nextGaussian();
            }
            Path inputsFile = tmp.resolve(tag + "-inputs-" + seed + ".f32");
            ByteBuffer b = ByteBuffer.allocate(4 * x.length).order(ByteOrder.LITTLE_ENDIAN);
            b.asFloatBuffer().put(x);
            Files.write(inputsFile, b.array());
            Path logitsFile = tmp.resolve(tag + "-logits-" + seed + ".f32");
            JsonNode report = runTwin(export, inputsFile, logitsFile);
            JsonNode reported = report.path("min_router_margin");  // null when top-k keeps every expert
            double margin = reported.isNumber() ? reported.asDouble() : Double.POSITIVE_INFINITY;
            if (margin < MIN_MARGIN) {
                continue;
            }
            float[] twinLogits = readFloats(logitsFile, N * classes);
            float[] javaLogits = new float[N * classes];
            Tensor xt = be.allocate("x", DType.FLOAT32, N, inputs);
            be.write(xt, x);
            be.read(model.logits(xt), javaLogits);
            double maxAbs = 0;
            double maxDiff = 0;
            for (int i = 0; i < javaLogits.length; i++) {
                maxAbs = Math.max(maxAbs, Math.abs(javaLogits[i]));
                maxDiff = Math.max(maxDiff, Math.abs(javaLogits[i] - twinLogits[i]));
            }
            System.out.printf(Locale.ROOT, "classifier twin %s: batch seed %d, min router margin %.3g, max |Δlogit| "
                    + "%.3g, max |logit| %.3g, ratio %.3g%n", tag, seed, margin, maxDiff, maxAbs, maxDiff / maxAbs);
            assertTrue(maxAbs > 0.1, "logits that say something: max |logit| " + maxAbs);
            assertTrue(maxDiff <= 1e-4 * maxAbs, tag + ": max |Δlogit| " + maxDiff + " > 1e-4 × max |logit| " + maxAbs);
            return;
        }
        throw new AssertionError(tag + ": no batch seed in 1..20 keeps every router margin ≥ " + MIN_MARGIN);
    }

    private static JsonNode runTwin(Path model, Path inputs, Path logits) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(PYTHON, twin.toString(), "--model", model.toString(), "--inputs",
                inputs.toString(), "--logits-out", logits.toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "the twin did not finish: " + out);
        assertEquals(0, p.exitValue(), "the twin failed:\n" + out);
        String[] lines = out.strip().split("\n");
        return new ObjectMapper().readTree(lines[lines.length - 1]);
    }

    private static float[] readFloats(Path file, int count) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        assertEquals(4L * count, bytes.length, "the twin's logits file size");
        float[] f = new float[count];
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(f);
        return f;
    }
}
