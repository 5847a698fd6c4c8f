package io.roundhouse.worker;

import static io.roundhouse.worker.TensorFixtures.randn;
import static io.roundhouse.worker.TensorFixtures.read;
import static io.roundhouse.worker.TensorFixtures.repeatRows;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.roundhouse.kernels.Activation;
import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.GateMode;
import io.roundhouse.kernels.Precision;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.kernels.cpu.CpuBackend;
import io.roundhouse.worker.checkpoint.CheckpointStore;
import io.roundhouse.worker.config.ConfigException;
import io.roundhouse.worker.model.Batch;
import io.roundhouse.worker.model.Hyper;
import io.roundhouse.worker.model.LmSpec;
import io.roundhouse.worker.model.ModelSpec;
import io.roundhouse.worker.model.MoeTransformer;
import io.roundhouse.worker.model.NormKind;
import io.roundhouse.worker.model.Param;
import io.roundhouse.worker.model.StepStats;
import io.roundhouse.worker.model.StnSpec;
import io.roundhouse.worker.train.Generator;
import io.roundhouse.worker.train.Trainer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A Self-Tuning Network on the language model: with its responses at zero the model is the plain
 * one; the hypergradient through the responses (embedding table, attention output, routers,
 * experts, head) matches finite differences; W = 2 takes the one-worker hyper steps; a resumed
 * run is bit-identical; generation reads an STN checkpoint; what the model lacks is refused.
 */
@Timeout(240)
class LanguageModelStnTest {
    private static final int B = 3;
    private static final int T = 8;
    private static final int V = 32;
    private static final int E = 4;

    @TempDir
    static Path tmp;

    static Path text;

    @BeforeAll
    static void corpus() throws Exception {
        text = LmFixtures.corpus(tmp.resolve("text.txt"), 5, 14_000, 7);
    }

    private static LmSpec spec(StnSpec stn) {
        return new LmSpec(new ModelSpec(V, V, 16, 2, E, 2, 8, Activation.SWIGLU, NormKind.RMSNORM,
                GateMode.TOPK_SOFTMAX, 0, 0, 0.1, 0.01, 0.001, 0.1, stn, Precision.FP32), T, 4, 2, 10000, 1, 12, true,
                0.1);
    }

    private static StnSpec all(String layers) {
        return new StnSpec(MoeTransformer.TUNABLE, Set.of(layers.split(",")));
    }

    private record FixedBatch(Tensor inputs, Tensor targets, int[] hostTargets) implements Batch {
        static FixedBatch random(Backend be, Random r) {
            int[] in = new int[B * T];
            int[] out = new int[B * T];
            for (int j = 0; j < in.length; j++) {
                in[j] = r.nextInt(V);
                out[j] = r.nextInt(V);
            }
            Tensor i = be.allocate("in", DType.INT32, in.length);
            Tensor o = be.allocate("out", DType.INT32, out.length);
            be.write(i, in);
            be.write(o, out);
            return new FixedBatch(i, o, out);
        }
    }

    @Test
    void withUZeroTheModelIsThePlainModel() {
        Backend be = new CpuBackend();
        MoeTransformer plain = MoeTransformer.local(be, spec(StnSpec.NONE), 11, B);
        MoeTransformer tuned = MoeTransformer.local(be, spec(all("embed,attention,router,experts,head")), 11, B);
        for (Param q : plain.params().all()) {
            assertArrayEquals(plain.params().read(q), tuned.params().read(tuned.params().get(q.name())),
                    q.name() + " starts as without the STN");
        }
        Random r = new Random(3);
        FixedBatch batch = FixedBatch.random(be, r);
        int h = MoeTransformer.TUNABLE.size();
        int n = B * T;
        tuned.perturbation().set(n, randn(r, n * h, 1), null);
        StepStats a = plain.forward(batch, B, false, 7, 3, 0, new StepStats(2, E));
        StepStats b = tuned.forward(batch, B, false, 7, 3, 0, new StepStats(2, E));
        assertEquals(a.crossEntropy, b.crossEntropy, 0.0, "evaluation: responses with U = 0 change nothing");
        // Training with every row at the fixed rates: the per-row dropout and jitter draw the same masks.
        float[][] values = new float[h][n];
        LmSpec s = spec(StnSpec.NONE);
        for (int j = 0; j < h; j++) {
            java.util.Arrays.fill(values[j], (float) s.fixed(MoeTransformer.TUNABLE.get(j)));
        }
        tuned.perturbation().set(n, randn(r, n * h, 1), values);
        a = plain.forward(batch, B, true, 7, 3, 0, new StepStats(2, E));
        b = tuned.forward(batch, B, true, 7, 3, 0, new StepStats(2, E));
        assertEquals(a.crossEntropy, b.crossEntropy, 1e-6 * a.crossEntropy, "training at the fixed rates, row by row");
    }

    /**
     * {@code Σ_rows dL/dΔ} against central differences of the evaluation loss when every token is
     * perturbed by the same δ, with random (trained-looking) responses.
     */
    @ParameterizedTest(name = "responses on {0}")
    @ValueSource(strings = {"embed,attention,router,experts,head", "embed", "attention"})
    void hypergradientThroughTheBestResponseMatchesFiniteDifferences(String layers) {
        Backend be = new CpuBackend();
        MoeTransformer model = MoeTransformer.local(be, spec(all(layers)), 11, B);
        int h = MoeTransformer.TUNABLE.size();
        int n = B * T;
        Random r = new Random(4);
        for (Param q : model.params().all()) {
            if (q.name().contains(".stn.u")) {
                be.write(q.value(), randn(r, q.value().size(), 0.5));
            }
        }
        FixedBatch batch = FixedBatch.random(be, r);
        float[] delta0 = randn(r, h, 0.3);
        model.params().zeroGrads();
        model.perturbation().set(n, repeatRows(delta0, n), null);
        model.forward(batch, B, false, 7, 3, 0, new StepStats(2, E));
        model.backward(B);
        float[] dd = read(be, model.perturbation().dDelta());
        for (int j = 0; j < h; j++) {
            double analytic = 0;
            for (int i = 0; i < n; i++) {
                analytic += dd[i * h + j];
            }
            float[] plus = delta0.clone();
            plus[j] += 1e-3f;
            float[] minus = delta0.clone();
            minus[j] -= 1e-3f;
            double numeric = (lossAt(model, plus, batch) - lossAt(model, minus, batch)) / (plus[j] - (double) minus[j]);
            String id = MoeTransformer.TUNABLE.get(j).id();
            System.out.printf("LM hypergradient (%s) %-17s analytic %+.6f numeric %+.6f%n", layers, id, analytic, numeric);
            assertTrue(Math.abs(analytic) > 1e-4, "a non-trivial hypergradient for " + id);
            assertEquals(numeric, analytic, 2e-4 + 1e-2 * Math.abs(analytic), id);
        }
    }

    private static double lossAt(MoeTransformer model, float[] delta, FixedBatch batch) {
        model.perturbation().set(B * T, repeatRows(delta, B * T), null);
        return model.forward(batch, B, false, 7, 3, 0, new StepStats(2, E)).crossEntropy;
    }

    @Test
    void whatTheModelLacksIsRefused() {
        Backend be = new CpuBackend();
        ConfigException e = assertThrows(ConfigException.class, () -> MoeTransformer.local(be,
                spec(new StnSpec(List.of(Hyper.DROPOUT_INPUT), Set.of("head"))), 1, B));
        assertTrue(e.getMessage().contains("stn.tune includes dropout.input, which the language model does not have"),
                e.getMessage());
    }

    private static Map<String, String> config(Path out) {
        Map<String, String> m = LmFixtures.config(text, out, 12);
        m.put("model.routerJitter", "0.05");
        m.put("stn.tune", "dropout.block,dropout.attention,router.jitter,loss.loadBalance");
        m.put("stn.layers", "embed,attention,router,experts,head");
        m.put("stn.warmupSteps", "3");
        m.put("stn.trainSteps", "3");
        m.put("stn.validSteps", "2");
        m.put("stn.lr", "0.1");
        return m;
    }

    @Test
    void twoWorkersTakeTheOneWorkerHyperStepsAndAResumeIsBitIdentical() throws Exception {
        Trainer.Result one = TrainerGroups.train(config(tmp.resolve("one")), 1, tmp.resolve("aeron"), "s1").get(0);
        List<JsonNode> oneHyper = TrainerGroups.records(one.runDir(), "hyper");
        assertEquals(3, oneHyper.size(), "hyper steps after steps 6, 9 and 12");
        JsonNode first = oneHyper.get(0).get("lambda");
        JsonNode last = oneHyper.get(oneHyper.size() - 1).get("lambda");
        assertNotEquals(first.toString(), last.toString(), "the hyperparameters move");
        assertTrue(oneHyper.get(0).has("validBitsPerByte"), oneHyper.get(0).toString());

        Trainer.Result two = TrainerGroups.train(config(tmp.resolve("two")), 2, tmp.resolve("aeron"), "s2").get(0);
        List<JsonNode> twoHyper = TrainerGroups.records(two.runDir(), "hyper");
        assertEquals(oneHyper.size(), twoHyper.size());
        for (int k = 0; k < oneHyper.size(); k++) {
            for (String field : new String[] {"lambda", "sigma", "hypergradient"}) {
                JsonNode a = oneHyper.get(k).get(field);
                JsonNode b = twoHyper.get(k).get(field);
                a.fieldNames().forEachRemaining(name -> {
                    double x = a.get(name).asDouble();
                    assertEquals(x, b.get(name).asDouble(), 1e-4 * Math.max(1e-2, Math.abs(x)), field + " " + name);
                });
            }
        }
        assertEquals(one.testLoss(), two.testLoss(), 1e-4, "W=2 validation loss");

        Map<String, String> resume = config(tmp.resolve("resumed"));
        resume.put("train.resume", one.runDir().resolve("checkpoints").resolve("step-00000006").toString());
        Trainer.Result resumed = TrainerGroups.train(resume, 1, tmp.resolve("aeron"), "sr").get(0);
        assertEquals(one.parameterDigest(), resumed.parameterDigest(), "resumed at step 6 of 12: the same bits");

        try (Generator g = new Generator(new CpuBackend(), one.runDir().resolve("checkpoints").toString(),
                CheckpointStore::local)) {
            byte[] a = g.generate("1 in the".getBytes(StandardCharsets.US_ASCII), 30, 0.8, 0.95, 7);
            assertEquals(30, a.length, "generation from an STN checkpoint");
        }
    }
}
