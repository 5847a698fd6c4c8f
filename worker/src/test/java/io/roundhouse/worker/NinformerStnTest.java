package io.roundhouse.worker;

import static io.roundhouse.worker.TensorFixtures.randn;
import static io.roundhouse.worker.TensorFixtures.read;
import static io.roundhouse.worker.TensorFixtures.repeatRows;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.roundhouse.kernels.Activation;
import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.GateMode;
import io.roundhouse.kernels.Precision;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.kernels.cpu.CpuBackend;
import io.roundhouse.worker.model.Batch;
import io.roundhouse.worker.model.ModelSpec;
import io.roundhouse.worker.model.Ninformer;
import io.roundhouse.worker.model.NinformerSpec;
import io.roundhouse.worker.model.NormKind;
import io.roundhouse.worker.model.Param;
import io.roundhouse.worker.model.StepStats;
import io.roundhouse.worker.model.StnSpec;
import io.roundhouse.worker.robust.Pgd;
import io.roundhouse.worker.train.Trainer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The NiNformer's Self-Tuning Network, one perturbation per patch: with U = 0 it is the plain model
 * (evaluation, and training at the fixed rates row by row); the hypergradient through its responses
 * against central differences; two workers take the one worker's hyper steps, and a resume between
 * rounds is bit-identical.
 */
@Timeout(240)
class NinformerStnTest {
    private static final int B = 3;
    private static final int SIDE = 6;
    private static final int P = 4;  // 3×3 patches of a 6×6 image
    private static final int E = 4;

    @TempDir
    Path tmp;

    private static NinformerSpec spec(StnSpec stn) {
        return new NinformerSpec(new ModelSpec(SIDE * SIDE, 4, 8, 2, E, 2, 6, Activation.GELU, NormKind.LAYERNORM,
                GateMode.TOPK_SOFTMAX, 0, 0, 0.1, 0.01, 0.001, 0.1, stn, Precision.FP32), 1, SIDE, 3, 5, 7, 1, 6);
    }

    private static StnSpec all(String layers) {
        return new StnSpec(Ninformer.TUNABLE, Set.of(layers.split(",")));
    }

    private static Batch.Of batch(Backend be, Random r) {
        float[] x = randn(r, B * SIDE * SIDE, 1);
        int[] y = new int[B];
        for (int i = 0; i < B; i++) {
            y[i] = r.nextInt(4);
        }
        Tensor xt = be.allocate("x", DType.FLOAT32, B, SIDE * SIDE);
        Tensor yt = be.allocate("y", DType.INT32, B);
        be.write(xt, x);
        be.write(yt, y);
        return new Batch.Of(xt, yt, y);
    }

    @Test
    void withUZeroTheModelIsThePlainModel() {
        Backend be = new CpuBackend();
        Ninformer plain = Ninformer.local(be, spec(StnSpec.NONE), 11, B);
        Ninformer tuned = Ninformer.local(be, spec(all("embed,router,experts")), 11, B);
        for (Param q : plain.params().all()) {
            assertArrayEquals(plain.params().read(q), tuned.params().read(tuned.params().get(q.name())),
                    q.name() + " starts as without the STN");
        }
        Random r = new Random(3);
        Batch.Of batch = batch(be, r);
        int h = Ninformer.TUNABLE.size();
        int n = B * P;
        tuned.perturbation().set(n, randn(r, n * h, 1), null);
        StepStats a = plain.forward(batch, B, false, 7, 3, 0, new StepStats(2, E));
        StepStats b = tuned.forward(batch, B, false, 7, 3, 0, new StepStats(2, E));
        assertEquals(a.crossEntropy, b.crossEntropy, 0.0, "evaluation: responses with U = 0 change nothing");
        float[][] values = new float[h][n];
        NinformerSpec s = spec(StnSpec.NONE);
        for (int j = 0; j < h; j++) {
            java.util.Arrays.fill(values[j], (float) s.moe().fixed(Ninformer.TUNABLE.get(j)));
        }
        tuned.perturbation().set(n, randn(r, n * h, 1), values);
        a = plain.forward(batch, B, true, 7, 3, 0, new StepStats(2, E));
        b = tuned.forward(batch, B, true, 7, 3, 0, new StepStats(2, E));
        assertEquals(a.crossEntropy, b.crossEntropy, 1e-6 * a.crossEntropy, "training at the fixed rates, row by row");
    }

    /** {@code Σ_rows dL/dΔ} against central differences of the evaluation loss, every patch perturbed by δ. */
    @ParameterizedTest(name = "responses on {0}")
    @ValueSource(strings = {"embed,router,experts", "embed", "router"})
    void hypergradientThroughTheBestResponseMatchesFiniteDifferences(String layers) {
        Backend be = new CpuBackend();
        Ninformer model = Ninformer.local(be, spec(all(layers)), 11, B);
        int h = Ninformer.TUNABLE.size();
        int n = B * P;
        Random r = new Random(4);
        for (Param q : model.params().all()) {
            if (q.name().contains(".stn.u")) {
                be.write(q.value(), randn(r, q.value().size(), 0.5));
            }
        }
        Batch.Of batch = batch(be, r);
        float[] delta0 = randn(r, h, 0.3);
        model.params().zeroGrads();
        model.perturbation().set(n, repeatRows(delta0, n), null);
        model.forward(batch, B, false, 7, 3, 0, new StepStats(2, E));
        model.backward(B);
        float[] dd = read(be, model.perturbation().dDelta());
        boolean any = false;
        for (int j = 0; j < h; j++) {
            double analytic = 0;
            for (int i = 0; i < n; i++) {
                analytic += dd[i * h + j];
            }
            // Routing is piecewise constant in δ: a step that moves a patch to another expert is
            // halved until none does (the derivative is the piece's).
            int[][] base = routes(model, delta0, batch);
            double step = 1e-3;
            float[] plus;
            float[] minus;
            while (true) {
                plus = delta0.clone();
                plus[j] += (float) step;
                minus = delta0.clone();
                minus[j] -= (float) step;
                if (java.util.Arrays.deepEquals(base, routes(model, plus, batch))
                        && java.util.Arrays.deepEquals(base, routes(model, minus, batch))) {
                    break;
                }
                step /= 2;
                assertTrue(step > 1e-6, "a routing boundary at δ itself");
            }
            double numeric = (lossAt(model, plus, batch) - lossAt(model, minus, batch)) / (plus[j] - (double) minus[j]);
            String id = Ninformer.TUNABLE.get(j).id();
            System.out.printf("NiNformer hypergradient (%s) %-17s analytic %+.6f numeric %+.6f%n", layers, id, analytic,
                    numeric);
            any |= Math.abs(analytic) > 1e-4;
            assertEquals(numeric, analytic, 2e-4 + 1e-2 * Math.abs(analytic), id);
        }
        assertTrue(any, "a non-trivial hypergradient");
    }

    /** Every MoE layer's copy table at perturbation δ. */
    private static int[][] routes(Ninformer model, float[] delta, Batch.Of batch) {
        lossAt(model, delta, batch);
        int[][] out = new int[model.moeLayers()][];
        for (int l = 0; l < out.length; l++) {
            Tensor t = model.routedExperts(l);
            out[l] = new int[t.size()];
            model.backend().read(t, out[l]);
        }
        return out;
    }

    private static double lossAt(Ninformer model, float[] delta, Batch.Of batch) {
        model.perturbation().set(B * P, repeatRows(delta, B * P), null);
        return model.forward(batch, B, false, 7, 3, 0, new StepStats(2, E)).crossEntropy;
    }

    private Map<String, String> config(Path data, Path out) {
        Map<String, String> m = NinformerFixtures.config(data, out);
        m.put("model.routerJitter", "0.05");
        m.put("stn.tune", "dropout.block,router.jitter,loss.loadBalance");
        m.put("stn.layers", "embed,router,experts");
        m.put("stn.warmupSteps", "3");
        m.put("stn.trainSteps", "3");
        m.put("stn.validSteps", "2");
        m.put("stn.lr", "0.1");
        m.put("train.maxSteps", "12");
        m.put("checkpoint.everySteps", "6");
        return m;
    }

    @Test
    void twoWorkersTakeTheOneWorkerHyperStepsAndAResumeIsBitIdentical() throws Exception {
        Path data = IdxFixtures.write(tmp.resolve("data"), 400, 60, 8);
        Trainer.Result one = TrainerGroups.train(config(data, tmp.resolve("one")), 1, tmp.resolve("aeron"), "ns1")
                .get(0);
        List<JsonNode> oneHyper = TrainerGroups.records(one.runDir(), "hyper");
        assertEquals(3, oneHyper.size(), "hyper steps after steps 6, 9 and 12");
        assertNotEquals(oneHyper.get(0).get("lambda").toString(), oneHyper.get(2).get("lambda").toString(),
                "the hyperparameters move");
        Trainer.Result two = TrainerGroups.train(config(data, tmp.resolve("two")), 2, tmp.resolve("aeron"), "ns2")
                .get(0);
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
        Map<String, String> resume = config(data, tmp.resolve("resumed"));
        resume.put("train.resume", one.runDir().resolve("checkpoints").resolve("step-00000006").toString());
        Trainer.Result resumed = TrainerGroups.train(resume, 1, tmp.resolve("aeron"), "nsr").get(0);
        assertEquals(one.parameterDigest(), resumed.parameterDigest(), "resumed at step 6 of 12: the same bits");
        assertTrue(Files.exists(one.runDir().resolve("export").resolve("model.safetensors")),
                "an STN run exports the plain network");
    }
}
