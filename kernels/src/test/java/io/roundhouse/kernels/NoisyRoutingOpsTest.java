package io.roundhouse.kernels;

import static io.roundhouse.kernels.OpTestSupport.assertClose;
import static io.roundhouse.kernels.OpTestSupport.dot;
import static io.roundhouse.kernels.OpTestSupport.numericGrad;
import static io.roundhouse.kernels.OpTestSupport.rounded;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * The noisy top-k router's ops (Shazeer et al. 2017) against plain loops in double written here:
 * Philox normals, the noisy logits, the smooth load estimate and the importance sums, with every
 * backward against central differences of its forward. N tokens, E experts, K slots.
 */
class NoisyRoutingOpsTest {
    private static final double GRAD_TOL = 2e-4;
    private static final int[][] SHAPES = {{1, 1}, {1, 4}, {7, 5}, {16, 8}, {9, 3}, {3, 64}};

    // ---- references ------------------------------------------------------------------------------

    /** ln(1 + eˣ), the plain formula (the inputs here keep eˣ finite in double). */
    private static double softplus(double x) {
        return Math.log(1 + Math.exp(x));
    }

    private static double sigmoid(double x) {
        return 1 / (1 + Math.exp(-x));
    }

    /**
     * Φ(z): ½(1 + erf(z/√2)) with erf from its series of positive terms
     * ({@code erf x = 2/√π·e^(−x²)·Σ 2ⁿx^(2n+1)/(1·3···(2n+1))}), and for z < −3 the continued
     * fraction {@code φ(x)/(x + 1/(x + 2/(x + 3/(x + …))))} of the lower tail, which keeps its relative
     * digits where 1 + erf would cancel. A different method from the backend's Chebyshev erfc.
     */
    static double phi(double z) {
        if (z < -3) {
            double x = -z;
            double cf = x;
            for (int i = 200; i >= 1; i--) {
                cf = x + i / cf;
            }
            return Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI) / cf;
        }
        double x = z / Math.sqrt(2);
        double term = x;
        double sum = x;
        for (int n = 1; n < 400 && Math.abs(term) > 1e-18 * Math.abs(sum); n++) {
            term *= 2 * x * x / (2 * n + 1);
            sum += term;
        }
        double erf = 2 / Math.sqrt(Math.PI) * Math.exp(-x * x) * sum;
        return 0.5 * (1 + erf);
    }

    private static double density(double z) {
        return Math.exp(-0.5 * z * z) / Math.sqrt(2 * Math.PI);
    }

    /** ε of element j: the Philox normal the op must draw. */
    private static double[] eps(int size, long seed, long stream, long first) {
        double[] e = new double[size];
        for (int j = 0; j < size; j++) {
            e[j] = Philox.normal(seed, stream, first + j);
        }
        return e;
    }

    /** rank[n·E + e] = #{j : v_j > v_e or (v_j == v_e and j < e)}, the definition. */
    private static int[] ranks(double[] v, int n, int e) {
        int[] rank = new int[n * e];
        for (int r = 0; r < n; r++) {
            for (int a = 0; a < e; a++) {
                for (int j = 0; j < e; j++) {
                    double vj = v[r * e + j];
                    double va = v[r * e + a];
                    if (vj > va || (vj == va && j < a)) {
                        rank[r * e + a]++;
                    }
                }
            }
        }
        return rank;
    }

    /** thr[n·E + e]: the expert whose noisy value is e's threshold (rank k if e is in, else rank k − 1). */
    private static int[] thresholdExperts(double[] noisy, int n, int e, int k) {
        int[] rank = ranks(noisy, n, e);
        int[] thr = new int[n * e];
        for (int r = 0; r < n; r++) {
            int atK = -1;
            int atKm1 = -1;
            for (int j = 0; j < e; j++) {
                if (rank[r * e + j] == k) {
                    atK = j;
                }
                if (rank[r * e + j] == k - 1) {
                    atKm1 = j;
                }
            }
            for (int j = 0; j < e; j++) {
                thr[r * e + j] = rank[r * e + j] < k ? atK : atKm1;
            }
        }
        return thr;
    }

    /** load = Φ((clean − noisy[thr])/softplus(raw)) for a fixed choice of threshold experts. */
    private static double[] load(double[] clean, double[] noisy, double[] raw, int[] thr, int n, int e) {
        double[] out = new double[n * e];
        for (int r = 0; r < n; r++) {
            for (int j = 0; j < e; j++) {
                int at = r * e + j;
                out[at] = phi((clean[at] - noisy[r * e + thr[at]]) / softplus(raw[at]));
            }
        }
        return out;
    }

    private static double[] concat(double[]... parts) {
        int n = 0;
        for (double[] p : parts) {
            n += p.length;
        }
        double[] all = new double[n];
        int at = 0;
        for (double[] p : parts) {
            System.arraycopy(p, 0, all, at, p.length);
            at += p.length;
        }
        return all;
    }

    /** Noisy values well apart (a shuffled ladder 0.6 apart, plus a little): h-perturbations keep the ranking. */
    private static double[] separated(OpTestSupport s, int n, int e) {
        double[] v = new double[n * e];
        for (int r = 0; r < n; r++) {
            int[] order = new int[e];
            for (int j = 0; j < e; j++) {
                order[j] = j;
            }
            for (int j = e - 1; j > 0; j--) {
                int i = s.rnd.nextInt(j + 1);
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
            for (int j = 0; j < e; j++) {
                v[r * e + j] = 0.6 * (order[j] - e / 2.0) + 0.1 * s.rnd.nextDouble();
            }
        }
        return rounded(v);
    }

    // ---- Philox normals ----------------------------------------------------------------------------

    @Test
    void philoxNormalsAreStandardAndDeterministic() {
        int n = 100_000;
        double sum = 0;
        double sq = 0;
        int beyond196 = 0;
        int differ = 0;
        for (int i = 0; i < n; i++) {
            double x = Philox.normal(1234, 5, i);
            sum += x;
            sq += x * x;
            beyond196 += Math.abs(x) > 1.959964 ? 1 : 0;
            differ += x != Philox.normal(1234, 6, i) ? 1 : 0;
            assertEquals(x, Philox.normal(1234, 5, i), 0.0, "the same (seed, stream, index), the same number");
        }
        double mean = sum / n;
        double var = sq / n - mean * mean;
        System.out.printf("Philox.normal over %d draws: mean %.5f, variance %.5f, P(|x| > 1.96) %.5f%n", n, mean, var,
                beyond196 / (double) n);
        assertEquals(0, mean, 0.015, "mean (standard error 0.003)");
        assertEquals(1, var, 0.025, "variance (standard error 0.0045)");
        assertEquals(0.05, beyond196 / (double) n, 0.004, "two-sided 5% tail");
        assertTrue(differ > n * 0.999, "another stream draws other numbers: " + differ + " of " + n + " differ");
        // The documented layout: Box–Muller on the uniforms of elements 2i and 2i+1 of the stream.
        for (long i : new long[] {0, 1, 2, 3, 77, 1L << 33}) {
            double u0 = Philox.uniform(9, 3, 2 * i);
            double u1 = Philox.uniform(9, 3, 2 * i + 1);
            double want = Math.sqrt(-2 * Math.log(1 - u0)) * Math.cos(2 * Math.PI * u1);
            assertEquals(want, Philox.normal(9, 3, i), 1e-6, "normal " + i + " from uniforms " + 2 * i + ", " + (2 * i + 1));
        }
    }

    // ---- noisy logits ------------------------------------------------------------------------------

    @Test
    void noisyLogitsForwardAndBackward() {
        for (int[] ne : SHAPES) {
            int n = ne[0];
            int e = ne[1];
            String tag = "N=" + n + " E=" + e;
            OpTestSupport s = new OpTestSupport(n * 100L + e);
            long seed = 77;
            long stream = 3;
            long first = 11;
            double[] clean = rounded(s.randn(n * e, 1.5));
            double[] raw = rounded(s.randn(n * e, 1.5));
            double[] dNoisy = rounded(s.randn(n * e, 1));
            double[] eps = eps(n * e, seed, stream, first);
            Tensor tc = s.tensor("clean", clean, n, e);
            Tensor tr = s.tensor("raw", raw, n, e);
            Tensor noisy = s.poisoned("noisy", n, e);
            s.be.noisyLogitsForward(noisy, tc, tr, seed, stream, first);
            java.util.function.Function<double[], double[]> ref = v -> {
                double[] out = new double[n * e];
                for (int j = 0; j < n * e; j++) {
                    out[j] = clean[j] + eps[j] * softplus(v[j]);
                }
                return out;
            };
            assertClose("noisy logits " + tag, ref.apply(raw), s.read(noisy), 1e-6);

            Tensor dRaw = s.poisoned("dRaw", n, e);
            Tensor tdn = s.tensor("dNoisy", dNoisy, n, e);
            s.be.noisyLogitsBackward(dRaw, tdn, tr, seed, stream, first);
            double[] loop = new double[n * e];
            for (int j = 0; j < n * e; j++) {
                loop[j] = dNoisy[j] * eps[j] * sigmoid(raw[j]);
            }
            assertClose("noisy dRaw vs loop " + tag, loop, s.read(dRaw), 1e-6);
            assertClose("noisy dRaw vs finite differences " + tag, numericGrad(ref, raw.clone(), dNoisy), s.read(dRaw),
                    GRAD_TOL);
        }
    }

    @Test
    void noisyLogitsDrawTheSameNoiseForTheSameKeyAndSliceByFirstElement() {
        OpTestSupport s = new OpTestSupport(8);
        int n = 13;
        int e = 6;
        Tensor clean = s.tensor("clean", rounded(s.randn(n * e, 1)), n, e);
        Tensor raw = s.tensor("raw", rounded(s.randn(n * e, 1)), n, e);
        Tensor dNoisy = s.tensor("dNoisy", rounded(s.randn(n * e, 1)), n, e);
        Tensor a = s.poisoned("a", n, e);
        Tensor b = s.poisoned("b", n, e);
        s.be.noisyLogitsForward(a, clean, raw, 5, 1, 0);
        s.be.noisyLogitsForward(b, clean, raw, 5, 1, 0);
        assertArrayEquals(s.read(a), s.read(b), "the same (seed, stream, firstElement): the same noise");
        s.be.noisyLogitsForward(b, clean, raw, 5, 2, 0);
        assertNotEquals(Arrays.toString(s.read(a)), Arrays.toString(s.read(b)), "another stream: other noise");
        s.be.noisyLogitsForward(b, clean, raw, 6, 1, 0);
        assertNotEquals(Arrays.toString(s.read(a)), Arrays.toString(s.read(b)), "another seed: other noise");

        // A worker holding rows [r0, N) with firstElement r0·E gets those rows of the whole batch's call.
        Tensor dRaw = s.poisoned("dRaw", n, e);
        s.be.noisyLogitsBackward(dRaw, dNoisy, raw, 5, 1, 0);
        for (int r0 : new int[] {1, 4, 12}) {
            int rows = n - r0;
            Tensor part = s.poisoned("part", rows, e);
            s.be.noisyLogitsForward(part, clean.rows(r0, rows), raw.rows(r0, rows), 5, 1, (long) r0 * e);
            assertArrayEquals(Arrays.copyOfRange(s.read(a), r0 * e, n * e), s.read(part), "forward rows from " + r0);
            Tensor dPart = s.poisoned("dPart", rows, e);
            s.be.noisyLogitsBackward(dPart, dNoisy.rows(r0, rows), raw.rows(r0, rows), 5, 1, (long) r0 * e);
            assertArrayEquals(Arrays.copyOfRange(s.read(dRaw), r0 * e, n * e), s.read(dPart),
                    "backward rows from " + r0);
        }
    }

    @Test
    void softplusIsStableForLargeInputs() {
        OpTestSupport s = new OpTestSupport(9);
        double[] raw = {-100, -30, -1, 0, 1, 30, 80, 100};
        int e = raw.length;
        Tensor clean = s.tensor("clean", new double[e], 1, e);
        Tensor noisy = s.poisoned("noisy", 1, e);
        s.be.noisyLogitsForward(noisy, clean, s.tensor("raw", raw, 1, e), 2, 2, 0);
        double[] eps = eps(e, 2, 2, 0);
        double[] want = new double[e];
        for (int j = 0; j < e; j++) {
            want[j] = eps[j] * (Math.log1p(Math.exp(-Math.abs(raw[j]))) + Math.max(raw[j], 0));
        }
        double[] got = s.read(noisy);
        for (int j = 0; j < e; j++) {
            assertTrue(Double.isFinite(got[j]), "softplus(" + raw[j] + ") is finite");
            // (ε·softplus(−100) ≈ 1e-44 is a float subnormal, with few digits left)
            assertEquals(want[j], got[j], 1e-6 * Math.abs(want[j]) + 1e-40, "ε·softplus(" + raw[j] + ")");
        }
    }

    // ---- the load estimate -------------------------------------------------------------------------

    @Test
    void noisyTopKLoadForwardAndBackward() {
        for (int[] nek : new int[][] {{1, 2, 1}, {1, 4, 2}, {7, 5, 3}, {16, 8, 2}, {9, 3, 1}, {12, 16, 4}, {5, 6, 5},
            {3, 64, 8}}) {
            int n = nek[0];
            int e = nek[1];
            int k = nek[2];
            String tag = "N=" + n + " E=" + e + " K=" + k;
            OpTestSupport s = new OpTestSupport(n * 1000L + e * 10 + k);
            double[] noisy = separated(s, n, e);
            double[] clean = rounded(plus(noisy, s.randn(n * e, 1.0)));
            double[] raw = rounded(s.randn(n * e, 0.8));
            double[] dLoad = rounded(s.randn(n * e, 1));
            Tensor tc = s.tensor("clean", clean, n, e);
            Tensor tn = s.tensor("noisy", noisy, n, e);
            Tensor tr = s.tensor("raw", raw, n, e);
            Tensor load = s.poisoned("load", n, e);
            s.be.noisyTopKLoadForward(load, tc, tn, tr, k);
            int[] thr = thresholdExperts(noisy, n, e, k);
            assertClose("load " + tag, load(clean, noisy, raw, thr, n, e), s.read(load), 1e-6);

            // Backward accumulates: start every gradient from known values.
            double[] dc0 = rounded(s.randn(n * e, 1));
            double[] dn0 = rounded(s.randn(n * e, 1));
            double[] dr0 = rounded(s.randn(n * e, 1));
            Tensor dc = s.tensor("dClean", dc0, n, e);
            Tensor dn = s.tensor("dNoisy", dn0, n, e);
            Tensor dr = s.tensor("dRaw", dr0, n, e);
            s.be.noisyTopKLoadBackward(dc, dn, dr, s.tensor("dLoad", dLoad, n, e), tc, tn, tr, k);
            double[] got = concat(minus(s.read(dc), dc0), minus(s.read(dn), dn0), minus(s.read(dr), dr0));

            // The ranking is recomputed from the perturbed noisy values: the ladder keeps it fixed.
            int m = n * e;
            double[] fd = numericGrad(v -> {
                double[] c = Arrays.copyOfRange(v, 0, m);
                double[] nv = Arrays.copyOfRange(v, m, 2 * m);
                double[] rw = Arrays.copyOfRange(v, 2 * m, 3 * m);
                return load(c, nv, rw, thresholdExperts(nv, n, e, k), n, e);
            }, concat(clean, noisy, raw), dLoad);
            assertClose("load gradients vs finite differences " + tag, fd, got, GRAD_TOL);

            double[] loop = new double[3 * m];
            for (int r = 0; r < n; r++) {
                for (int j = 0; j < e; j++) {
                    int at = r * e + j;
                    double sigma = softplus(raw[at]);
                    double z = (clean[at] - noisy[r * e + thr[at]]) / sigma;
                    double g = dLoad[at] * density(z) / sigma;
                    loop[at] += g;
                    loop[m + r * e + thr[at]] -= g;
                    loop[2 * m + at] -= g * z * sigmoid(raw[at]);
                }
            }
            assertClose("load gradients vs loop " + tag, loop, got, 1e-5);
        }
    }

    private static double[] plus(double[] a, double[] b) {
        double[] d = new double[a.length];
        for (int j = 0; j < a.length; j++) {
            d[j] = a[j] + b[j];
        }
        return d;
    }

    private static double[] minus(double[] a, double[] b) {
        double[] d = new double[a.length];
        for (int j = 0; j < a.length; j++) {
            d[j] = a[j] - b[j];
        }
        return d;
    }

    /**
     * Ties rank to the lower index: noisy (1, 3, 3, 0, 3) ranks experts 1, 2, 4, 0, 3; with k = 2
     * experts 1 and 2 are in and their threshold is expert 4's value, the others' expert 2's.
     */
    @Test
    void tiesRankToTheLowerExpertAndTheGradientReachesTheThresholdExperts() {
        OpTestSupport s = new OpTestSupport(10);
        int e = 5;
        double[] noisy = {1, 3, 3, 0, 3};
        double[] clean = {0.5, 2.5, 3.5, -1, 2};
        double[] raw = {0.3, -0.2, 0.1, 0.4, -0.5};
        double[] dLoad = {1, 1, 1, 1, 1};
        Tensor tc = s.tensor("clean", clean, 1, e);
        Tensor tn = s.tensor("noisy", noisy, 1, e);
        Tensor tr = s.tensor("raw", raw, 1, e);
        Tensor load = s.poisoned("load", 1, e);
        s.be.noisyTopKLoadForward(load, tc, tn, tr, 2);
        double[] want = new double[e];
        int[] thr = {2, 4, 4, 2, 2};
        assertArrayEquals(thr, thresholdExperts(noisy, 1, e, 2), "the reference's threshold experts");
        for (int j = 0; j < e; j++) {
            want[j] = phi((clean[j] - noisy[thr[j]]) / softplus(raw[j]));
        }
        assertClose("load with ties", want, s.read(load), 1e-6);
        Tensor dn = s.tensor("dNoisy", new double[e], 1, e);
        s.be.noisyTopKLoadBackward(s.tensor("dc", new double[e], 1, e), dn, s.tensor("dr", new double[e], 1, e),
                s.tensor("dLoad", dLoad, 1, e), tc, tn, tr, 2);
        double[] got = s.read(dn);
        assertEquals(0.0, got[0], 0.0, "expert 0 is no threshold");
        assertEquals(0.0, got[1], 0.0, "expert 1 is no threshold");
        assertEquals(0.0, got[3], 0.0, "expert 3 is no threshold");
        double in = 0;
        double out = 0;
        for (int j = 0; j < e; j++) {
            double sigma = softplus(raw[j]);
            double g = density((clean[j] - noisy[thr[j]]) / sigma) / sigma;
            if (thr[j] == 4) {
                in -= g;
            } else {
                out -= g;
            }
        }
        assertEquals(in, got[4], 1e-6, "the in-experts' threshold, expert 4 (rank k)");
        assertEquals(out, got[2], 1e-6, "the out-experts' threshold, expert 2 (rank k − 1)");
    }

    @Test
    void withKAtLeastEEveryExpertIsAlwaysIn() {
        OpTestSupport s = new OpTestSupport(11);
        int n = 4;
        int e = 3;
        Tensor tc = s.tensor("clean", rounded(s.randn(n * e, 1)), n, e);
        Tensor tn = s.tensor("noisy", rounded(s.randn(n * e, 1)), n, e);
        Tensor tr = s.tensor("raw", rounded(s.randn(n * e, 1)), n, e);
        for (int k : new int[] {e, e + 3}) {
            Tensor load = s.poisoned("load", n, e);
            s.be.noisyTopKLoadForward(load, tc, tn, tr, k);
            double[] ones = new double[n * e];
            Arrays.fill(ones, 1);
            assertArrayEquals(ones, s.read(load), 0.0, "k = " + k + " ≥ E: load 1");
            double[] g0 = rounded(s.randn(n * e, 1));
            Tensor dc = s.tensor("dc", g0, n, e);
            Tensor dn = s.tensor("dn", g0, n, e);
            Tensor dr = s.tensor("dr", g0, n, e);
            s.be.noisyTopKLoadBackward(dc, dn, dr, s.tensor("dLoad", s.randn(n * e, 1), n, e), tc, tn, tr, k);
            assertArrayEquals(g0, s.read(dc), 0.0, "k ≥ E adds nothing to dClean");
            assertArrayEquals(g0, s.read(dn), 0.0, "k ≥ E adds nothing to dNoisy");
            assertArrayEquals(g0, s.read(dr), 0.0, "k ≥ E adds nothing to dRaw");
        }
        assertThrows(IllegalArgumentException.class,
                () -> s.be.noisyTopKLoadForward(s.poisoned("load", n, e), tc, tn, tr, 0));
    }

    /** Far in the tails Φ keeps its relative digits (no 1 − erf cancellation). */
    @Test
    void loadTailsKeepTheirRelativeAccuracy() {
        OpTestSupport s = new OpTestSupport(12);
        double[] zs = {-9, -6, -5, -2, 0, 2, 5};
        for (double zWant : zs) {
            // E = 2, k = 1, noisy (1, 0): expert 1 is out and must pass expert 0's value 1.
            double sigma = softplus(0.25);
            double[] clean = rounded(new double[] {3, 1 + zWant * sigma});
            double[] noisy = {1, 0};
            double[] raw = {0.25, 0.25};
            Tensor load = s.poisoned("load", 1, 2);
            s.be.noisyTopKLoadForward(load, s.tensor("clean", clean, 1, 2), s.tensor("noisy", noisy, 1, 2),
                    s.tensor("raw", raw, 1, 2), 1);
            double want = phi((clean[1] - 1) / softplus((float) 0.25));
            double got = s.read(load)[1];
            System.out.printf("load at z ≈ %4.1f: %.9e (reference %.9e)%n", zWant, got, want);
            assertEquals(want, got, 2e-6 * want, "Φ(" + zWant + ") to a relative 2e-6");
        }
        assertEquals(2.866515718791939e-7, phi(-5), 1e-20, "the reference's own Φ(−5)");
        assertEquals(0.9772498680518208, phi(2), 1e-15, "the reference's own Φ(2)");
    }

    // ---- the importance statistic ------------------------------------------------------------------

    @Test
    void expertGateSumsAndAddExpertValuesSkipEmptySlots() {
        OpTestSupport s = new OpTestSupport(13);
        int n = 23;
        int k = 3;
        int e = 7;
        int[] top = new int[n * k];
        for (int c = 0; c < n * k; c++) {
            top[c] = c % 5 == 3 ? -1 : s.rnd.nextInt(e);
        }
        double[] g = rounded(s.randn(n * k, 1));
        Tensor idx = s.ints("topIdx", top, n, k);
        Tensor gates = s.tensor("gates", g, n, k);
        float[] sums = new float[e];
        Arrays.fill(sums, Float.NaN);
        s.be.expertGateSums(idx, gates, sums);
        double[] want = new double[e];
        for (int c = 0; c < n * k; c++) {
            if (top[c] >= 0) {
                want[top[c]] += g[c];
            }
        }
        double[] got = new double[e];
        for (int j = 0; j < e; j++) {
            got[j] = sums[j];
        }
        assertClose("expertGateSums", want, got, 1e-6);

        double[] values = rounded(s.randn(e, 1));
        float[] perExpert = OpTestSupport.toFloat(values);
        double[] dg0 = rounded(s.randn(n * k, 1));
        Tensor dGates = s.tensor("dGates", dg0, n, k);
        s.be.addExpertValues(dGates, idx, perExpert);
        double[] wantDg = dg0.clone();
        for (int c = 0; c < n * k; c++) {
            if (top[c] >= 0) {
                wantDg[c] += values[top[c]];
            }
        }
        double[] gotDg = s.read(dGates);
        assertClose("addExpertValues", wantDg, gotDg, 1e-6);
        for (int c = 3; c < n * k; c += 5) {
            assertEquals(dg0[c], gotDg[c], 0.0, "slot " + c + " with no copy is untouched");
        }
        // The adjoint: Σ_e sums[e]·v[e] == ⟨gates, addExpertValues(0, v)⟩.
        Tensor zero = s.tensor("zero", new double[n * k], n, k);
        s.be.addExpertValues(zero, idx, perExpert);
        assertEquals(dot(got, values), dot(g, s.read(zero)), 1e-5, "addExpertValues is the adjoint of expertGateSums");

        top[7] = e;
        Tensor bad = s.ints("bad", top, n, k);
        IllegalArgumentException ex = assertThrows(IllegalArgumentException.class,
                () -> s.be.expertGateSums(bad, gates, sums));
        assertTrue(ex.getMessage().contains("expert index 7 of token 2 (slot 1)"), ex.getMessage());
        ex = assertThrows(IllegalArgumentException.class, () -> s.be.addExpertValues(dGates, bad, perExpert));
        assertTrue(ex.getMessage().contains("expert index 7 of token 2 (slot 1)"), ex.getMessage());
    }
}
