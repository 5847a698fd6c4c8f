package io.roundhouse.worker;

import static io.roundhouse.worker.TensorFixtures.read;
import static io.roundhouse.worker.TensorFixtures.tensor;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.roundhouse.kernels.Activation;
import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.cpu.CpuBackend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.GateMode;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.worker.model.Hyper;
import io.roundhouse.worker.model.LinearLayer;
import io.roundhouse.worker.model.ModelSpec;
import io.roundhouse.worker.model.MoeClassifier;
import io.roundhouse.worker.model.NormKind;
import io.roundhouse.worker.model.Param;
import io.roundhouse.worker.model.ParamStore;
import io.roundhouse.worker.model.Perturbation;
import io.roundhouse.worker.model.StepStats;
import io.roundhouse.worker.model.StnResponse;
import io.roundhouse.worker.model.StnSpec;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The Self-Tuning Network's layers: with {@code U = 0} a layer (and a whole model) is the plain one
 * bit for bit; the response's backward matches finite differences of a plain-loop reference in
 * double; and the hypergradient through the best-response (what a hyper step computes) matches
 * finite differences of the validation loss on a tiny model.
 */
class StnLayerTest {
    private static final int N = 5;
    private static final int I = 4;
    private static final int O = 3;
    private static final int H = 2;
    private static final StnSpec SPEC = new StnSpec(List.of(Hyper.DROPOUT_INPUT, Hyper.Z_LOSS), Set.of("embed"));

    private static float[] randn(Random r, int n, double scale) {
        float[] v = new float[n];
        for (int j = 0; j < n; j++) {
            v[j] = (float) (r.nextGaussian() * scale);
        }
        return v;
    }

    @Test
    void withUZeroTheLayerIsThePlainLayerBitForBit() {
        Random r = new Random(1);
        Backend be = new CpuBackend();
        LinearLayer plain = new LinearLayer(be, new ParamStore(be, 3), "l", I, O, true, 0.5, N);
        ParamStore ps = new ParamStore(be, 3);
        LinearLayer stn = new LinearLayer(be, ps, "l", I, O, true, 0.5, N);
        StnResponse resp = new StnResponse(be, ps, "l", I, O, H, 0.5, N);
        Perturbation p = new Perturbation(be, SPEC, N);
        stn.attach(resp, p);
        p.set(N, randn(r, N * H, 1), null);
        float[] b = randn(r, O, 1);
        be.write(plain.b.value(), b);
        be.write(stn.b.value(), b);
        Tensor x = tensor(be, randn(r, N * I, 1), N, I);
        Tensor dy = tensor(be, randn(r, N * O, 1), N, O);
        assertArrayEquals(read(be, plain.forward(x)), read(be, stn.forward(x)), "forward");
        assertArrayEquals(read(be, plain.backward(dy, true)), read(be, stn.backward(dy, true)), "dx");
        assertArrayEquals(read(be, plain.w.grad()), read(be, stn.w.grad()), "dW");
        assertArrayEquals(read(be, plain.b.grad()), read(be, stn.b.grad()), "db");
        assertArrayEquals(new float[I * O], read(be, resp.wr.grad()), "no gradient reaches W_r while U = 0");
        float[] dus = read(be, resp.us.grad());
        assertTrue(norm(dus) > 0, "U_s learns from the start (x·W_r is not zero)");
    }

    /** Σ dy·y of the STN layer in double: y = xW + b + (ΔU_s)⊙(xW_r) + (ΔU_t)⊙b_r. */
    private static double reference(double[] v, double[] dy) {
        int at = 0;
        double[] x = slice(v, at, N * I);
        double[] w = slice(v, at += N * I, I * O);
        double[] b = slice(v, at += I * O, O);
        double[] wr = slice(v, at += O, I * O);
        double[] br = slice(v, at += I * O, O);
        double[] us = slice(v, at += O, H * O);
        double[] ut = slice(v, at += H * O, H * O);
        double[] d = slice(v, at += H * O, N * H);
        double sum = 0;
        for (int n = 0; n < N; n++) {
            for (int o = 0; o < O; o++) {
                double plain = b[o];
                double z = 0;
                for (int i = 0; i < I; i++) {
                    plain += x[n * I + i] * w[i * O + o];
                    z += x[n * I + i] * wr[i * O + o];
                }
                double s = 0;
                double t = 0;
                for (int j = 0; j < H; j++) {
                    s += d[n * H + j] * us[j * O + o];
                    t += d[n * H + j] * ut[j * O + o];
                }
                sum += dy[n * O + o] * (plain + s * z + t * br[o]);
            }
        }
        return sum;
    }

    private static double[] slice(double[] v, int from, int n) {
        return java.util.Arrays.copyOfRange(v, from, from + n);
    }

    @Test
    void responseBackwardMatchesFiniteDifferencesOfAPlainLoop() {
        Random r = new Random(2);
        Backend be = new CpuBackend();
        ParamStore ps = new ParamStore(be, 4);
        LinearLayer layer = new LinearLayer(be, ps, "l", I, O, true, 0.5, N);
        StnResponse resp = new StnResponse(be, ps, "l", I, O, H, 0.5, N);
        Perturbation p = new Perturbation(be, SPEC, N);
        layer.attach(resp, p);
        float[] x = randn(r, N * I, 1);
        float[][] parts = {x, randn(r, I * O, 1), randn(r, O, 1), randn(r, I * O, 1), randn(r, O, 1),
                randn(r, H * O, 1), randn(r, H * O, 1), randn(r, N * H, 1)};
        Param[] params = {layer.w, layer.b, resp.wr, resp.br, resp.us, resp.ut};
        for (int k = 0; k < params.length; k++) {
            be.write(params[k].value(), parts[k + 1]);
        }
        p.set(N, parts[7], null);
        float[] dyv = randn(r, N * O, 1);
        Tensor dy = tensor(be, dyv, N, O);
        ps.zeroGrads();
        layer.forward(tensor(be, x, N, I));
        float[] dx = read(be, layer.backward(dy, true));
        float[][] got = {dx, read(be, layer.w.grad()), read(be, layer.b.grad()), read(be, resp.wr.grad()),
                read(be, resp.br.grad()), read(be, resp.us.grad()), read(be, resp.ut.grad()), read(be, p.dDelta())};
        String[] names = {"dx", "dW", "db", "dW_r", "db_r", "dU_s", "dU_t", "dΔ"};

        int total = 0;
        for (float[] a : parts) {
            total += a.length;
        }
        double[] v = new double[total];
        double[] dyd = new double[dyv.length];
        for (int j = 0; j < dyv.length; j++) {
            dyd[j] = dyv[j];
        }
        int at = 0;
        for (float[] a : parts) {
            for (float f : a) {
                v[at++] = f;
            }
        }
        at = 0;
        for (int k = 0; k < parts.length; k++) {
            double worst = 0;
            for (int j = 0; j < parts[k].length; j++) {
                double keep = v[at + j];
                double h = 1e-6;
                v[at + j] = keep + h;
                double plus = reference(v, dyd);
                v[at + j] = keep - h;
                double minus = reference(v, dyd);
                v[at + j] = keep;
                double numeric = (plus - minus) / (2 * h);
                worst = Math.max(worst, Math.abs(numeric - got[k][j]) / Math.max(1, Math.abs(numeric)));
            }
            System.out.printf("STN layer %-5s vs finite differences: worst relative difference %.2e%n", names[k], worst);
            assertTrue(worst < 1e-5, names[k] + ": worst relative difference " + worst);
            at += parts[k].length;
        }
    }

    private static ModelSpec tinySpec(StnSpec stn) {
        return new ModelSpec(12, 4, 6, 2, 4, 2, 5, Activation.GELU, NormKind.LAYERNORM, GateMode.TOPK_SOFTMAX, 0, 0.2, 0.2,
                0.05, 0.01, 0.1, stn, io.roundhouse.kernels.Precision.FP32);
    }

    @Test
    void withUZeroTheModelIsThePlainModelBitForBit() {
        int n = 9;
        Backend be = new CpuBackend();
        StnSpec stn = new StnSpec(MoeClassifier.TUNABLE, Set.copyOf(MoeClassifier.STN_LAYERS));
        MoeClassifier plain = MoeClassifier.local(be, tinySpec(StnSpec.NONE), 11, n);
        MoeClassifier tuned = MoeClassifier.local(be, tinySpec(stn), 11, n);
        for (Param q : plain.params().all()) {
            assertArrayEquals(plain.params().read(q), tuned.params().read(tuned.params().get(q.name())),
                    q.name() + " starts as without the STN");
        }
        Random r = new Random(3);
        Tensor x = tensor(be, randn(r, n * 12, 1), n, 12);
        int[] ys = new int[n];
        for (int j = 0; j < n; j++) {
            ys[j] = r.nextInt(4);
        }
        Tensor y = be.allocate("y", DType.INT32, n);
        be.write(y, ys);
        tuned.perturbation().set(n, randn(r, n * MoeClassifier.TUNABLE.size(), 1), null);
        StepStats a = plain.forward(x, y, ys, false, 7, 3, new StepStats(2, 4));
        StepStats b = tuned.forward(x, y, ys, false, 7, 3, new StepStats(2, 4));
        assertEquals(a.crossEntropy, b.crossEntropy, 0.0, "perturbed responses with U = 0 change nothing");
        assertEquals(a.correct, b.correct);
    }

    /**
     * The hypergradient a hyper step computes, {@code Σ_i dL/dΔ_i} with every example perturbed by the
     * same δ, against central differences of the evaluation-mode loss in δ, with trained-looking
     * (random) responses on embed, routers and head.
     */
    @ParameterizedTest(name = "responses on {0}")
    @ValueSource(strings = {"embed,router,experts,head", "experts", "router"})
    void hypergradientThroughTheBestResponseMatchesFiniteDifferences(String layers) {
        int n = 9;
        int h = MoeClassifier.TUNABLE.size();
        Backend be = new CpuBackend();
        StnSpec stn = new StnSpec(MoeClassifier.TUNABLE, Set.of(layers.split(",")));
        MoeClassifier model = MoeClassifier.local(be, tinySpec(stn), 11, n);
        Random r = new Random(4);
        for (Param q : model.params().all()) {
            if (q.name().contains(".stn.u")) {
                be.write(q.value(), randn(r, q.value().size(), 0.5));
            }
        }
        Tensor x = tensor(be, randn(r, n * 12, 1), n, 12);
        int[] ys = new int[n];
        for (int j = 0; j < n; j++) {
            ys[j] = r.nextInt(4);
        }
        Tensor y = be.allocate("y", DType.INT32, n);
        be.write(y, ys);
        float[] delta0 = randn(r, h, 0.3);
        StepStats stats = new StepStats(2, 4);
        model.params().zeroGrads();
        model.perturbation().set(n, rows(delta0, n), null);
        model.forward(x, y, ys, false, 7, 3, stats);
        model.backward();
        float[] dd = read(be, model.perturbation().dDelta());
        for (int j = 0; j < h; j++) {
            double analytic = 0;
            for (int i = 0; i < n; i++) {
                analytic += dd[i * h + j];
            }
            double step = 1e-3;
            float[] plus = delta0.clone();
            plus[j] += (float) step;
            float[] minus = delta0.clone();
            minus[j] -= (float) step;
            double numeric = (lossAt(model, plus, n, x, y, ys) - lossAt(model, minus, n, x, y, ys))
                    / (plus[j] - (double) minus[j]);
            System.out.printf("hypergradient (%s) %-16s analytic %+.6f numeric %+.6f%n", layers, MoeClassifier.TUNABLE.get(j).id(),
                    analytic, numeric);
            assertTrue(Math.abs(analytic) > 1e-4, "a non-trivial hypergradient");
            assertEquals(numeric, analytic, 2e-4 + 1e-2 * Math.abs(analytic), MoeClassifier.TUNABLE.get(j).id());
        }
    }

    private static double lossAt(MoeClassifier model, float[] delta, int n, Tensor x, Tensor y, int[] ys) {
        model.perturbation().set(n, rows(delta, n), null);
        return model.forward(x, y, ys, false, 7, 3, new StepStats(2, 4)).crossEntropy;
    }

    private static float[] rows(float[] delta, int n) {
        float[] out = new float[n * delta.length];
        for (int i = 0; i < n; i++) {
            System.arraycopy(delta, 0, out, i * delta.length, delta.length);
        }
        return out;
    }

    private static double norm(float[] v) {
        double s = 0;
        for (float f : v) {
            s += f * f;
        }
        return Math.sqrt(s);
    }
}
