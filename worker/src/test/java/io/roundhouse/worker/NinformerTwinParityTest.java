package io.roundhouse.worker;

import com.fasterxml.jackson.databind.JsonNode;
import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.kernels.cpu.CpuBackend;
import io.roundhouse.worker.checkpoint.CheckpointStore;
import io.roundhouse.worker.model.Ninformer;
import io.roundhouse.worker.train.ModelCheckpoint;
import io.roundhouse.worker.train.Trainer;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;
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
        int classes = model.spec().classes();
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
            PyTorchTwin.assertMatch("ninformer " + tag, seed, margin, javaLogits, twinLogits);
            return;
        }
        throw new AssertionError(tag + ": no batch seed in 1..20 keeps every router margin ≥ " + MIN_MARGIN);
    }
}
