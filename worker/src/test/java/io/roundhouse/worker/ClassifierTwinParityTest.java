package io.roundhouse.worker;

import com.fasterxml.jackson.databind.JsonNode;
import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.kernels.cpu.CpuBackend;
import io.roundhouse.worker.checkpoint.CheckpointStore;
import io.roundhouse.worker.model.MoeClassifier;
import io.roundhouse.worker.train.ModelCheckpoint;
import io.roundhouse.worker.train.Trainer;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.SplittableRandom;
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
    private static final int N = 16;
    private static final double MIN_MARGIN = 1e-3;

    @TempDir
    static Path tmp;

    static PyTorchTwin twin;

    @BeforeAll
    static void setUp() throws Exception {
        twin = PyTorchTwin.orSkip("roundhouse_classifier_twin.py");
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
            JsonNode report = twin.run("--model", export.toString(), "--inputs", inputsFile.toString(),
                    "--logits-out", logitsFile.toString());
            double margin = PyTorchTwin.margin(report);
            if (margin < MIN_MARGIN) {
                continue;
            }
            float[] twinLogits = PyTorchTwin.readFloats(logitsFile, N * classes);
            float[] javaLogits = new float[N * classes];
            Tensor xt = be.allocate("x", DType.FLOAT32, N, inputs);
            be.write(xt, x);
            be.read(model.logits(xt), javaLogits);
            PyTorchTwin.assertMatch("classifier " + tag, seed, margin, javaLogits, twinLogits);
            return;
        }
        throw new AssertionError(tag + ": no batch seed in 1..20 keeps every router margin ≥ " + MIN_MARGIN);
    }
}
