package io.roundhouse.worker;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.kernels.cpu.CpuBackend;
import io.roundhouse.worker.checkpoint.CheckpointStore;
import io.roundhouse.worker.model.Ninformer;
import io.roundhouse.worker.train.ModelCheckpoint;
import io.roundhouse.worker.train.Trainer;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A NiNformer trained a few steps leaves its export in the run directory, and the plain-PyTorch
 * twin ({@code scripts/roundhouse_ninformer_twin.py}) run on it computes the logits of the model its
 * checkpoint holds: MoE blocks with every gate mode's kin, dense blocks, both norms, GELU and
 * SwiGLU experts, the sigmoid router with its bias and a shared expert. Skipped where
 * {@code /usr/bin/python3} or its {@code torch} is missing.
 */
@Timeout(300)
class NinformerTwinParityTest {
    private static final int N = 8;
    private static final double MIN_MARGIN = 1e-3;

    @TempDir
    static Path tmp;

    static PyTorchTwin twin;
    static Path data;

    @BeforeAll
    static void setUp() throws Exception {
        twin = PyTorchTwin.orSkip("roundhouse_ninformer_twin.py");
        data = IdxFixtures.write(tmp.resolve("images"), 200, 20, 5);
    }

    private static Map<String, String> config(String run) {
        Map<String, String> m = new HashMap<>();
        m.put("model.kind", "ninformer");
        m.put("data.dir", data.toString());
        m.put("data.validationExamples", "0");
        m.put("model.patchSize", "7");
        m.put("model.dim", "16");
        m.put("model.tokenHidden", "8");
        m.put("model.channelHidden", "24");
        m.put("model.experts", "4");
        m.put("model.expertHidden", "12");
        m.put("model.blocks", "2");
        m.put("model.capacityFactor", "0");
        m.put("train.maxSteps", "4");
        m.put("train.batchSize", "20");
        m.put("train.warmupSteps", "1");
        m.put("train.lr", "0.01");
        m.put("train.evalBatchSize", "20");
        m.put("output.dir", tmp.resolve(run).toString());
        m.put("backend", "cpu");
        return m;
    }

    @Test
    void moeEveryBlockGeluLayerNormSoftmaxTopK() throws Exception {
        Map<String, String> m = config("run-gelu");
        m.put("model.gate", "softmax_topk");
        check("gelu", m);
    }

    @Test
    void denseAndMoeBlocksSwigluRmsNormSigmoidRouterSharedExpert() throws Exception {
        Map<String, String> m = config("run-sigmoid");
        m.put("model.moeEvery", "2");
        m.put("model.activation", "swiglu");
        m.put("model.norm", "rmsnorm");
        m.put("model.router", "sigmoid");
        m.put("model.routerBiasRate", "0.05");
        m.put("model.sharedExperts", "1");
        check("sigmoid", m);
    }

    private static void check(String tag, Map<String, String> config) throws Exception {
        Trainer.Result r = TrainerGroups.train(config, 1, tmp.resolve("aeron"), "nt-" + tag).get(0);
        Path export = r.runDir().resolve("export");
        Backend be = new CpuBackend();
        Ninformer model = (Ninformer) ModelCheckpoint.open(r.runDir().resolve("checkpoints").toString(),
                CheckpointStore::local).imageModel(be, N, "(test)");
        int inputs = model.spec().inputs();
        Tensor xt = be.allocate("x", DType.FLOAT32, N, inputs);
        twin.assertMatchesOnABatch("ninformer " + tag, export, tmp, N, inputs, model.spec().classes(), MIN_MARGIN,
                x -> {
                    be.write(xt, x);
                    float[] logits = new float[N * model.spec().classes()];
                    be.read(model.logits(xt), logits);
                    return logits;
                });
    }
}
