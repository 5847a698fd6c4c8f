package io.roundhouse.worker;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.kernels.cpu.CpuBackend;
import io.roundhouse.worker.checkpoint.CheckpointStore;
import io.roundhouse.worker.model.MoeClassifier;
import io.roundhouse.worker.train.ModelCheckpoint;
import io.roundhouse.worker.train.Trainer;
import java.nio.file.Path;
import java.util.Map;
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
        Tensor xt = be.allocate("x", DType.FLOAT32, N, inputs);
        twin.assertMatchesOnABatch("classifier " + tag, export, tmp, N, inputs, model.spec().classes(), MIN_MARGIN,
                x -> {
                    be.write(xt, x);
                    float[] logits = new float[N * model.spec().classes()];
                    be.read(model.logits(xt), logits);
                    return logits;
                });
    }
}
