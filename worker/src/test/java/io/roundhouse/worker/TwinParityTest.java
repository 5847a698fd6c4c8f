package io.roundhouse.worker;

import com.fasterxml.jackson.databind.JsonNode;
import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.kernels.cpu.CpuBackend;
import io.roundhouse.worker.checkpoint.CheckpointStore;
import io.roundhouse.worker.export.ModelExport;
import io.roundhouse.worker.model.Batch;
import io.roundhouse.worker.model.MoeTransformer;
import io.roundhouse.worker.train.ModelCheckpoint;
import io.roundhouse.worker.train.Trainer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A language model trained 2 steps, exported, and run by the plain-PyTorch twin
 * ({@code scripts/roundhouse_twin.py}): the twin's logits equal the Java model's (evaluation mode)
 * to 1e-4 of the largest logit. Skips when {@code /usr/bin/python3} or its {@code torch} is missing.
 */
@Timeout(300)
class TwinParityTest {
    private static final int B = 2;
    private static final int T = 16;
    private static final double MIN_MARGIN = 1e-3;

    @TempDir
    static Path tmp;

    static Path text;
    static PyTorchTwin twin;

    @BeforeAll
    static void setUp() throws Exception {
        twin = PyTorchTwin.orSkip("roundhouse_twin.py");
        text = LmFixtures.corpus(tmp.resolve("text.txt"), 5, 6_000, 8);
    }

    @Test
    void moeAndDenseBlocksGatedAttentionOwnHead() throws Exception {
        Map<String, String> m = config("own");
        m.put("model.attentionGate", "on");
        m.put("model.tieEmbeddings", "off");
        m.put("model.moeEvery", "2");
        m.put("model.gate", "topk_softmax");
        check("own", m);
    }

    @Test
    void tiedEmbeddingsNoGateRenormalisedSoftmaxEveryBlockMoe() throws Exception {
        Map<String, String> m = config("tied");
        m.put("model.attentionGate", "off");
        m.put("model.tieEmbeddings", "on");
        m.put("model.moeEvery", "1");
        m.put("model.gate", "softmax_topk_renorm");
        check("tied", m);
    }

    /** The sigmoid router, its selection bias moved by a large rate so it changes choices; shared experts. */
    @Test
    void sigmoidRouterWithItsSelectionBiasAndSharedExperts() throws Exception {
        Map<String, String> m = config("sigmoid");
        m.put("model.router", "sigmoid");
        m.put("model.routerBiasRate", "0.05");
        m.put("model.sharedExperts", "2");
        check("sigmoid", m);
    }

    /** LayerNorm and GELU experts (the built-in defaults' kinds), a shared expert, dense blocks. */
    @Test
    void layerNormGeluExpertsSharedExpert() throws Exception {
        Map<String, String> m = config("gelu");
        m.put("model.norm", "layernorm");
        m.put("model.activation", "gelu");
        m.put("model.sharedExperts", "1");
        m.put("model.moeEvery", "2");
        check("gelu", m);
    }

    private static Map<String, String> config(String tag) {
        Map<String, String> m = LmFixtures.config(text, tmp.resolve("run-" + tag), 2);
        m.put("data.seqLen", String.valueOf(T));
        m.put("model.dim", "32");
        m.put("model.heads", "4");
        m.put("model.kvHeads", "2");
        m.put("model.experts", "4");
        m.put("model.topK", "2");
        m.put("model.expertHidden", "16");
        m.put("checkpoint.everySteps", "2");
        return m;
    }

    private static void check(String tag, Map<String, String> config) throws Exception {
        Trainer.Result r = TrainerGroups.train(config, 1, tmp.resolve("aeron"), tag).get(0);
        String ckpt = r.runDir().resolve("checkpoints").toString();
        Path out = tmp.resolve("export-" + tag);
        ModelExport.run(new CpuBackend(), ckpt, CheckpointStore::local, out);
        Backend be = new CpuBackend();
        MoeTransformer model = ModelCheckpoint.open(ckpt, CheckpointStore::local).languageModel(be, B, "(test)");
        int v = model.lmSpec().vocabulary();
        // Near-ties between the k-th and (k+1)-th router logit could send a token to another expert
        // under a rounding difference: batches are drawn by seed, in order, until the twin reports
        // every margin at least MIN_MARGIN.
        for (long seed = 1; seed <= 20; seed++) {
            int[] ids = new int[B * (T + 1)];
            SplittableRandom rnd = new SplittableRandom(seed);
            for (int i = 0; i < ids.length; i++) {
                ids[i] = rnd.nextInt(256);
            }
            int[] in = new int[B * T];
            int[] next = new int[B * T];
            StringBuilder json = new StringBuilder("[");
            for (int s = 0; s < B; s++) {
                json.append(s == 0 ? "[" : ",[");
                for (int t = 0; t < T; t++) {
                    in[s * T + t] = ids[s * (T + 1) + t];
                    next[s * T + t] = ids[s * (T + 1) + t + 1];
                    json.append(t == 0 ? "" : ",").append(in[s * T + t]);
                }
                json.append(']');
            }
            json.append(']');
            Path tokens = Files.writeString(tmp.resolve(tag + "-tokens-" + seed + ".json"), json);
            Path logitsFile = tmp.resolve(tag + "-logits-" + seed + ".f32");
            JsonNode report = twin.run("--model", out.toString(), "--tokens", tokens.toString(), "--logits-out",
                    logitsFile.toString());
            double margin = PyTorchTwin.margin(report);
            if (margin < MIN_MARGIN) {
                continue;
            }
            float[] twinLogits = PyTorchTwin.readFloats(logitsFile, B * T * v);
            float[] javaLogits = new float[B * T * v];
            be.read(model.logits(FixedBatch.of(be, in, next), B), javaLogits);
            PyTorchTwin.assertMatch(tag, seed, margin, javaLogits, twinLogits);
            return;
        }
        throw new AssertionError(tag + ": no batch seed in 1..20 keeps every router margin ≥ " + MIN_MARGIN);
    }

    private record FixedBatch(Tensor inputs, Tensor targets, int[] hostTargets) implements Batch {
        static FixedBatch of(Backend be, int[] in, int[] out) {
            Tensor i = be.allocate("in", DType.INT32, in.length);
            Tensor o = be.allocate("out", DType.INT32, out.length);
            be.write(i, in);
            be.write(o, out);
            return new FixedBatch(i, o, out);
        }
    }
}
