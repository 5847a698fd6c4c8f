package io.roundhouse.worker.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.roundhouse.kernels.Activation;
import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.GateMode;
import io.roundhouse.kernels.Philox;
import io.roundhouse.kernels.Precision;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.kernels.cpu.CpuBackend;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Each router against a plain-loop reference in double written from its definition: the copies it
 * chooses and their gates, and its backward (the input's and the weights' gradients of
 * {@code L = Σ dG·g + its balancing losses}) against central finite differences of the reference,
 * the noise fixed through the seed.
 */
class RouterReferenceTest {
    private static final int N = 10;
    private static final int D = 5;
    private static final int E = 4;
    private static final int K = 2;
    private static final long SEED = 17;
    private static final long STREAM = 3;
    private static final long FIRST_ROW = 40;

    private final Backend be = new CpuBackend();
    private final Random rnd = new Random(11);

    private ModelSpec spec(RouterSpec r, double capacityFactor) {
        return new ModelSpec(D, 2, D, 1, E, K, 3, Activation.GELU, NormKind.LAYERNORM, GateMode.TOPK_SOFTMAX,
                capacityFactor, 0, 0, 0, 0, 0, StnSpec.NONE, Precision.FP32, r, 0);
    }

    private double[] gaussian(int n, double std) {
        double[] v = new double[n];
        for (int j = 0; j < n; j++) {
            v[j] = rnd.nextGaussian() * std;
        }
        return v;
    }

    private static float[] f(double[] v) {
        float[] out = new float[v.length];
        for (int j = 0; j < v.length; j++) {
            out[j] = (float) v[j];
        }
        return out;
    }

    private static double[] d(float[] v) {
        double[] out = new double[v.length];
        for (int j = 0; j < v.length; j++) {
            out[j] = v[j];
        }
        return out;
    }

    /** Rows of x·W [N, E] in double. */
    private static double[] matmul(double[] x, double[] w) {
        double[] h = new double[N * E];
        for (int r = 0; r < N; r++) {
            for (int j = 0; j < E; j++) {
                for (int c = 0; c < D; c++) {
                    h[r * E + j] += x[r * D + c] * w[c * E + j];
                }
            }
        }
        return h;
    }

    private static double[] softmaxRow(double[] h, int r) {
        double max = Double.NEGATIVE_INFINITY;
        for (int j = 0; j < E; j++) {
            max = Math.max(max, h[r * E + j]);
        }
        double[] p = new double[E];
        double s = 0;
        for (int j = 0; j < E; j++) {
            p[j] = Math.exp(h[r * E + j] - max);
            s += p[j];
        }
        for (int j = 0; j < E; j++) {
            p[j] /= s;
        }
        return p;
    }

    /** The K largest of v (ties to the lower index), in descending order. */
    private static int[] topK(double[] v, int off, int k) {
        Integer[] order = new Integer[E];
        for (int j = 0; j < E; j++) {
            order[j] = j;
        }
        Arrays.sort(order, (a, b) -> v[off + a] != v[off + b] ? Double.compare(v[off + b], v[off + a]) : a - b);
        int[] out = new int[k];
        for (int q = 0; q < k; q++) {
            out[q] = order[q];
        }
        return out;
    }

    /** A router's run: forward, statistics (one worker: local = global), backward of Σ dG·g. */
    private record Run(int[] copies, float[] gates, float[] dx) {
    }

    private Run run(LinearRouter router, double[] x, double[] dG, boolean train, long step) {
        Tensor xt = be.allocate("x", DType.FLOAT32, N, D);
        be.write(xt, f(x));
        router.forward(xt, new RouterContext(train, step, SEED, STREAM, FIRST_ROW));
        int s = router.slots();
        int[] copies = new int[N * s];
        be.read(router.copies(), copies);
        float[] gates = new float[N * s];
        be.read(router.gates(), gates);
        int[] selected = new int[E];
        for (int c : copies) {
            if (c >= 0) {
                selected[c]++;
            }
        }
        float[] stats = new float[router.statsSize()];
        router.localStats(stats, selected);
        router.globalStats(stats);
        float[] dg = new float[N * s];
        for (int q = 0; q < dg.length; q++) {
            dg[q] = copies[q] >= 0 ? (float) dG[q] : 0f;   // the un-permute gives empty slots no gradient
        }
        Tensor dGates = be.allocate("dG", DType.FLOAT32, N, s);
        be.write(dGates, dg);
        float[] dx = new float[N * D];
        be.read(router.backward(dGates), dx);
        return new Run(copies, gates, dx);
    }

    /** Σ over kept slots of dG·g, the reference's loss with the router's choices. */
    private static double dot(double[] dG, int[] copies, double[] gates) {
        double s = 0;
        for (int q = 0; q < copies.length; q++) {
            if (copies[q] >= 0) {
                s += dG[q] * gates[q];
            }
        }
        return s;
    }

    private interface Loss {
        double at(double[] v);
    }

    private static void gradientMatches(String what, Loss loss, double[] at, float[] analytic, double tol) {
        double h = 1e-6;
        double worst = 0;
        for (int j = 0; j < at.length; j++) {
            double[] p = at.clone();
            double[] m = at.clone();
            p[j] += h;
            m[j] -= h;
            double numeric = (loss.at(p) - loss.at(m)) / (2 * h);
            double diff = Math.abs(numeric - analytic[j]);
            worst = Math.max(worst, diff);
            assertEquals(numeric, analytic[j], tol * Math.max(1, Math.abs(numeric)), what + " [" + j + "]");
        }
        System.out.printf("%-52s worst |analytic - finite difference| %.2e%n", what, worst);
    }

    // ---- dense-to-sparse ------------------------------------------------------------------------

    /** Gates of the activation dense-to-sparse gate softmax(σ(xW)/τ + b), K slots, empty below the threshold. */
    private static double[] denseToSparseGates(double[] x, double[] w, double[] b, double tau, double threshold,
                                               int[] copiesOut) {
        double[] h = matmul(x, w);
        double[] g = new double[N * K];
        for (int r = 0; r < N; r++) {
            double[] s = new double[E];
            for (int j = 0; j < E; j++) {
                s[j] = 1 / (1 + Math.exp(-h[r * E + j])) / tau + b[j];
            }
            double[] p = softmaxRow(s, 0);
            int[] top = topK(p, 0, K);
            for (int q = 0; q < K; q++) {
                g[r * K + q] = p[top[q]];
                if (copiesOut != null) {
                    copiesOut[r * K + q] = p[top[q]] >= threshold ? top[q] : -1;
                }
            }
        }
        return g;
    }

    @Test
    void denseToSparseMatchesItsDefinition() {
        RouterSpec.Temperature t = new RouterSpec.Temperature(2.0, 0.2, "cosine", 10);
        double threshold = 0.3;
        ParamStore ps = new ParamStore(be, 1);
        LinearRouter router = LinearRouter.create(be, ps, "r", spec(RouterSpec.of(
                RouterSpec.Kind.DENSE_TO_SPARSE).withTemperature(t, threshold, true, RouterSpec.BiasPlacement.OUTSIDE),
                0), new LocalExchange(E), N);
        double[] x = gaussian(N * D, 1);
        double[] w = gaussian(D * E, 2);
        double[] b = gaussian(E, 0.5);
        be.write(ps.get("r.router.w").value(), f(w));
        be.write(ps.get("r.router.b").value(), f(b));
        double[] dG = gaussian(N * K, 1);
        long step = 4;
        double tau = t.at(step);
        assertEquals(0.2 + 1.8 * 0.5 * (1 + Math.cos(Math.PI * 0.4)), tau, 1e-12);
        Run got = run(router, x, dG, true, step);
        int[] copies = new int[N * K];
        double[] g = denseToSparseGates(x, w, b, tau, threshold, copies);
        assertArrayEquals(copies, got.copies(), "copies: top-K, empty below the threshold");
        int kept = (int) Arrays.stream(copies).filter(c -> c >= 0).count();
        assertTrue(kept > 0 && kept < N * K, "the threshold empties some slots and keeps others: " + kept);
        for (int q = 0; q < g.length; q++) {
            assertEquals(g[q], got.gates()[q], 1e-5, "gate " + q);
        }
        gradientMatches("dense-to-sparse dL/dx", v -> dot(dG, copies, denseToSparseGates(v, w, b, tau, 0, null)), x,
                got.dx(), 1e-3);
        gradientMatches("dense-to-sparse dL/dW", v -> dot(dG, copies, denseToSparseGates(x, v, b, tau, 0, null)), w,
                ps.readGrad(ps.get("r.router.w")), 1e-3);
        gradientMatches("dense-to-sparse dL/db", v -> dot(dG, copies, denseToSparseGates(x, w, v, tau, 0, null)), b,
                ps.readGrad(ps.get("r.router.b")), 1e-3);
    }

    // ---- expert choice ----------------------------------------------------------------------------

    @Test
    void expertChoiceMatchesItsDefinition() {
        double cf = 1.0;
        ParamStore ps = new ParamStore(be, 1);
        LinearRouter router = LinearRouter.create(be, ps, "r",
                spec(RouterSpec.of(RouterSpec.Kind.EXPERT_CHOICE).withCausal(true), cf), new LocalExchange(E), N);
        double[] x = gaussian(N * D, 1);
        double[] w = gaussian(D * E, 1);
        be.write(ps.get("r.router.w").value(), f(w));
        double[] dG = gaussian(N * E, 1);
        Run got = run(router, x, dG, true, 0);
        // Reference: each expert takes its c = ceil(cf·K·N/E) highest-scored tokens (ties: lower token).
        double[] h = matmul(x, w);
        double[][] p = new double[N][];
        for (int r = 0; r < N; r++) {
            p[r] = softmaxRow(h, r);
        }
        int c = (int) Math.ceil(cf * K * N / E);
        boolean[][] chosen = new boolean[N][E];
        for (int j = 0; j < E; j++) {
            int col = j;
            Integer[] tokens = new Integer[N];
            for (int r = 0; r < N; r++) {
                tokens[r] = r;
            }
            Arrays.sort(tokens, (a, b) -> p[a][col] != p[b][col] ? Double.compare(p[b][col], p[a][col]) : a - b);
            for (int q = 0; q < c; q++) {
                chosen[tokens[q]][j] = true;
            }
        }
        int[] perExpert = new int[E];
        for (int r = 0; r < N; r++) {
            boolean[] seen = new boolean[E];
            for (int s = 0; s < E; s++) {
                int ex = got.copies()[r * E + s];
                if (ex >= 0) {
                    assertTrue(chosen[r][ex], "token " + r + " sent to expert " + ex + " that did not choose it");
                    assertEquals(p[r][ex], got.gates()[r * E + s], 1e-6, "the gate is the score");
                    seen[ex] = true;
                    perExpert[ex]++;
                }
            }
            for (int j = 0; j < E; j++) {
                assertEquals(chosen[r][j], seen[j], "token " + r + " expert " + j);
            }
        }
        int[] balanced = new int[E];
        Arrays.fill(balanced, c);
        assertArrayEquals(balanced, perExpert, "every expert takes exactly c tokens");
        // dL/dx of Σ dG·S over the chosen pairs, the choice fixed.
        int[] copies = got.copies();
        Loss loss = v -> {
            double[] hv = matmul(v, w);
            double s = 0;
            for (int r = 0; r < N; r++) {
                double[] pr = softmaxRow(hv, r);
                for (int q = 0; q < E; q++) {
                    if (copies[r * E + q] >= 0) {
                        s += dG[r * E + q] * pr[copies[r * E + q]];
                    }
                }
            }
            return s;
        };
        gradientMatches("expert choice dL/dx", loss, x, got.dx(), 1e-3);

        // A causal model evaluates with token choice: the top round(cf·K) experts by score.
        Run eval = run(router, x, dG, false, 0);
        for (int r = 0; r < N; r++) {
            int[] top = topK(p[r], 0, K);
            for (int s = 0; s < E; s++) {
                assertEquals(s < K ? top[s] : -1, eval.copies()[r * E + s], "evaluation: token choice, token " + r);
            }
        }
    }

    // ---- noisy top-k -------------------------------------------------------------------------------

    private static double softplus(double v) {
        return Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v)));
    }

    /** Φ in double (Abramowitz–Stegun 26.2.17 is too coarse here: integrate the density). */
    private static double phi(double z) {
        // Φ(z) = ½ + ∫_0^z φ by Simpson's rule on 2,000 panels: ~1e-13 for |z| < 8.
        int m = 2000;
        double hh = z / m;
        double s = 0;
        for (int i = 0; i <= m; i++) {
            double t = i * hh;
            double wgt = i == 0 || i == m ? 1 : (i % 2 == 1 ? 4 : 2);
            s += wgt * Math.exp(-t * t / 2);
        }
        return 0.5 + s * hh / 3 / Math.sqrt(2 * Math.PI);
    }

    private static double cvSquared(double[] v) {
        double mean = Arrays.stream(v).average().orElse(0);
        double var = 0;
        for (double x : v) {
            var += (x - mean) * (x - mean);
        }
        return var / v.length / (mean * mean);
    }

    /**
     * The noisy router's loss Σ dG·g + wI·CV(importance)² + wL·CV(load)² in double, with the
     * choices {@code top} (K per token) held fixed.
     */
    private static double noisyLoss(double[] x, double[] wg, double[] wn, double[] dG, int[] top, double wI,
                                    double wL, int[] topOut) {
        double[] clean = matmul(x, wg);
        double[] raw = matmul(x, wn);
        double[] noisy = new double[N * E];
        for (int q = 0; q < N * E; q++) {
            noisy[q] = clean[q] + Philox.normal(SEED, STREAM, FIRST_ROW * E + q) * softplus(raw[q]);
        }
        double[] importance = new double[E];
        double[] load = new double[E];
        double s = 0;
        for (int r = 0; r < N; r++) {
            int[] chosen = top != null ? Arrays.copyOfRange(top, r * K, r * K + K) : topK(noisy, r * E, K);
            if (topOut != null) {
                System.arraycopy(chosen, 0, topOut, r * K, K);
            }
            double max = noisy[r * E + chosen[0]];
            double z = 0;
            for (int q = 0; q < K; q++) {
                z += Math.exp(noisy[r * E + chosen[q]] - max);
            }
            for (int q = 0; q < K; q++) {
                double g = Math.exp(noisy[r * E + chosen[q]] - max) / z;  // softmax over the kept (topk_softmax)
                s += dG[r * K + q] * g;
                importance[chosen[q]] += g;
            }
            // P(e in the top-k under a fresh draw of its own noise): against the k-th largest of the others.
            int[] order = topK(noisy, r * E, E);
            for (int j = 0; j < E; j++) {
                int rank = 0;
                while (order[rank] != j) {
                    rank++;
                }
                double thr = noisy[r * E + order[rank < K ? K : K - 1]];
                load[j] += phi((clean[r * E + j] - thr) / softplus(raw[r * E + j]));
            }
        }
        return s + wI * cvSquared(importance) + wL * cvSquared(load);
    }

    @Test
    void noisyTopKMatchesItsDefinition() {
        double wI = 0.3;
        double wL = 0.2;
        ParamStore ps = new ParamStore(be, 1);
        LinearRouter router = LinearRouter.create(be, ps, "r",
                spec(RouterSpec.of(RouterSpec.Kind.NOISY).withNoiseLosses(wI, wL), 0), new LocalExchange(E), N);
        double[] x = gaussian(N * D, 1);
        double[] wg = gaussian(D * E, 1);
        double[] wn = gaussian(D * E, 0.5);
        be.write(ps.get("r.router.w").value(), f(wg));
        be.write(ps.get("r.router.noise").value(), f(wn));
        double[] dG = gaussian(N * K, 1);
        Run got = run(router, x, dG, true, 0);
        int[] top = new int[N * K];
        double want = noisyLoss(x, wg, wn, dG, null, wI, wL, top);
        assertArrayEquals(top, got.copies(), "the K largest noisy logits");
        double gotLoss = router.loadBalanceLoss();
        assertEquals(want - noisyLoss(x, wg, wn, dG, top, 0, 0, null), gotLoss, 1e-5, "importance + load losses");
        gradientMatches("noisy top-k dL/dx", v -> noisyLoss(v, wg, wn, dG, top, wI, wL, null), x, got.dx(), 2e-3);
        gradientMatches("noisy top-k dL/dW_g", v -> noisyLoss(x, v, wn, dG, top, wI, wL, null), wg,
                ps.readGrad(ps.get("r.router.w")), 2e-3);
        gradientMatches("noisy top-k dL/dW_noise", v -> noisyLoss(x, wg, v, dG, top, wI, wL, null), wn,
                ps.readGrad(ps.get("r.router.noise")), 2e-3);

        // Evaluation: no noise, the clean logits' top-k.
        Run eval = run(router, x, dG, false, 0);
        double[] clean = matmul(x, wg);
        for (int r = 0; r < N; r++) {
            int[] want2 = topK(clean, r * E, K);
            assertArrayEquals(want2, Arrays.copyOfRange(eval.copies(), r * K, r * K + K), "evaluation top-k, token " + r);
        }
    }
}
