package io.roundhouse.kernels.cpu;

import static io.roundhouse.kernels.cpu.CpuBackend.f;
import static io.roundhouse.kernels.cpu.CpuBackend.i;
import static io.roundhouse.kernels.cpu.CpuBackend.o;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.Check;
import io.roundhouse.kernels.Philox;
import io.roundhouse.kernels.Tensor;

/**
 * The noisy top-k router's ops on the CPU (Shazeer et al. 2017, "Outrageously large neural
 * networks"): the noisy logits {@code clean + ε·softplus(raw)} with ε from Philox (never stored),
 * the smooth load estimate {@code P(expert e stays in the top-k under a fresh draw of its own
 * noise)} and its gradient, and the importance statistic's per-expert gate sums.
 *
 * <p>Legend as in {@link Backend}: N tokens, E experts, K slots per token; every [N,E] tensor
 * row-major. The noisy-logits backward assigns dRaw; the load backward accumulates, because its
 * three gradients join others (dClean and dNoisy the gate's, dRaw the noisy logits').
 *
 * <p>Ranking: expert a precedes b when {@code noisy_a > noisy_b}, or they are equal and a < b (the
 * top-k's ties to the lower index); the expert at rank r has r experts before it.
 */
public final class CpuNoisyRouting {
    private static final double INV_SQRT_2PI = 0.3989422804014327;

    private CpuNoisyRouting() {
    }

    static void noisyLogitsForward(Tensor noisy, Tensor clean, Tensor raw, long seed, long stream, long first) {
        Check.noisyLogits("noisyLogitsForward", noisy, clean, raw, first);
        noisyLogits(true, noisy, clean, raw, seed, stream, first);
    }

    static void noisyLogitsBackward(Tensor dRaw, Tensor dNoisy, Tensor raw, long seed, long stream, long first) {
        Check.noisyLogits("noisyLogitsBackward", dRaw, dNoisy, raw, first);
        noisyLogits(false, dRaw, dNoisy, raw, seed, stream, first);
    }

    /**
     * Forward: out = in + ε·softplus(raw); backward: out = in·ε·σ(raw), with ε of element
     * {@code first + j} ({@link Philox#normal}); one pass for both, so their ε cannot disagree.
     */
    private static void noisyLogits(boolean forward, Tensor out, Tensor in, Tensor raw, long seed, long stream,
                                    long first) {
        float[] oa = f(out);
        float[] ia = f(in);
        float[] ra = f(raw);
        int oo = o(out);
        int io = o(in);
        int ro = o(raw);
        int[] words = Philox.scratch();
        long block = -1;
        for (int j = 0, n = raw.size(); j < n; j++) {
            long g = first + j;
            if ((g >>> 1) != block) {
                block = g >>> 1;
                Philox.block4(seed, stream, block, words);
            }
            int at = (int) (g & 1) * 2;
            float eps = Philox.boxMuller(words[at], words[at + 1]);
            float x = ra[ro + j];
            oa[oo + j] = forward ? (float) (ia[io + j] + eps * softplus(x)) : ia[io + j] * eps * CpuRouting.sigmoid(x);
        }
    }

    /** softplus(x) = ln(1 + eˣ) = ln(1 + e^−|x|) + max(x, 0), finite for every finite x. */
    static double softplus(double x) {
        return Math.log1p(Math.exp(-Math.abs(x))) + Math.max(x, 0.0);
    }

    static void noisyTopKLoadForward(Tensor load, Tensor clean, Tensor noisy, Tensor raw, int k) {
        Check.noisyTopKLoad("noisyTopKLoadForward", noisy, k, load, clean, raw);
        int n = noisy.dim(0);
        int e = noisy.dim(1);
        float[] la = f(load);
        if (k >= e) {
            java.util.Arrays.fill(la, o(load), o(load) + load.size(), 1f);
            return;
        }
        float[] c = f(clean);
        float[] v = f(noisy);
        float[] ra = f(raw);
        for (int r = 0; r < n; r++) {
            int vr = o(noisy) + r * e;
            int out = rankedAt(v, vr, e, k - 1);
            int in = after(v, vr, e, out);
            for (int j = 0; j < e; j++) {
                double sigma = softplus(ra[o(raw) + r * e + j]);
                double z = (c[o(clean) + r * e + j] - (double) v[vr + threshold(v, vr, j, in, out)]) / sigma;
                la[o(load) + r * e + j] = (float) normalCdf(z);
            }
        }
    }

    static void noisyTopKLoadBackward(Tensor dClean, Tensor dNoisy, Tensor dRaw, Tensor dLoad, Tensor clean,
                                      Tensor noisy, Tensor raw, int k) {
        Check.noisyTopKLoad("noisyTopKLoadBackward", noisy, k, dClean, dNoisy, dRaw, dLoad, clean, raw);
        int n = noisy.dim(0);
        int e = noisy.dim(1);
        if (k >= e) {
            return;  // every expert is always in: the load is the constant 1
        }
        float[] c = f(clean);
        float[] v = f(noisy);
        float[] ra = f(raw);
        float[] dl = f(dLoad);
        float[] dc = f(dClean);
        float[] dv = f(dNoisy);
        float[] dr = f(dRaw);
        for (int r = 0; r < n; r++) {
            int vr = o(noisy) + r * e;
            int out = rankedAt(v, vr, e, k - 1);
            int in = after(v, vr, e, out);
            double dIn = 0;   // into the threshold of the experts in the top-k: the expert at rank k
            double dOut = 0;  // into the threshold of the others: the expert at rank k − 1
            for (int j = 0; j < e; j++) {
                float x = ra[o(raw) + r * e + j];
                double sigma = softplus(x);
                int thr = threshold(v, vr, j, in, out);
                double z = (c[o(clean) + r * e + j] - (double) v[vr + thr]) / sigma;
                // d load/d clean = φ(z)/σ = −d load/d thr;  d load/d raw = −φ(z)·z/σ · σ'(raw), σ' = sigmoid
                double g = dl[o(dLoad) + r * e + j] * INV_SQRT_2PI * Math.exp(-0.5 * z * z) / sigma;
                dc[o(dClean) + r * e + j] += (float) g;
                dr[o(dRaw) + r * e + j] += (float) (-g * z * CpuRouting.sigmoid(x));
                if (thr == in) {
                    dIn -= g;
                } else {
                    dOut -= g;
                }
            }
            dv[o(dNoisy) + r * e + in] += (float) dIn;
            dv[o(dNoisy) + r * e + out] += (float) dOut;
        }
    }

    /** Whether expert a precedes expert b in the ranking of row {@code v[at, at + E)}. */
    private static boolean precedes(float[] v, int at, int a, int b) {
        return v[at + a] > v[at + b] || (v[at + a] == v[at + b] && a < b);
    }

    /** The expert right after {@code prev} in the ranking (prev −1: the first), in one pass. */
    private static int after(float[] v, int at, int e, int prev) {
        int best = -1;
        for (int j = 0; j < e; j++) {
            if ((prev < 0 || precedes(v, at, prev, j)) && (best < 0 || precedes(v, at, j, best))) {
                best = j;
            }
        }
        return best;
    }

    /** The expert at rank {@code rank} (rank + 1 passes of {@link #after}: O(k·E), nothing stored). */
    private static int rankedAt(float[] v, int at, int e, int rank) {
        int x = after(v, at, e, -1);
        for (int s = 0; s < rank; s++) {
            x = after(v, at, e, x);
        }
        return x;
    }

    /**
     * The expert whose noisy value is expert j's threshold: for j in the top-k (before {@code in},
     * the expert at rank k) the one it must stay above is {@code in}; for j outside, the one it must
     * pass is {@code out}, the expert at rank k − 1.
     */
    private static int threshold(float[] v, int at, int j, int in, int out) {
        return precedes(v, at, j, in) ? in : out;
    }

    /** Φ(z) = ½·erfc(−z/√2), accurate in relative terms in both tails. */
    static double normalCdf(double z) {
        return 0.5 * erfc(-z * 0.7071067811865476);
    }

    /**
     * erfc(x) by the Chebyshev fit of Numerical Recipes ({@code erfcc}, W. H. Press et al., §6.2):
     * fractional error below 1.2e-7 for every x, so Φ keeps its digits far into the tails where
     * {@code 1 − erf} would cancel.
     */
    static double erfc(double x) {
        double z = Math.abs(x);
        double t = 1.0 / (1.0 + 0.5 * z);
        double poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
                + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
                + t * (-0.82215223 + t * 0.17087277))))))));
        double ans = t * Math.exp(poly);
        return x >= 0 ? ans : 2.0 - ans;
    }

    static void expertGateSums(Tensor topIdx, Tensor gates, float[] sums) {
        Check.expertSlots("expertGateSums", topIdx, gates, sums.length);
        int k = topIdx.dim(1);
        int[] idx = i(topIdx);
        float[] g = f(gates);
        double[] acc = new double[sums.length];
        for (int c = 0, m = topIdx.size(); c < m; c++) {
            int e = idx[o(topIdx) + c];
            Check.expertSlot("expertGateSums", e, c, k, sums.length);
            if (e >= 0) {
                acc[e] += g[o(gates) + c];
            }
        }
        for (int e = 0; e < sums.length; e++) {
            sums[e] = (float) acc[e];
        }
    }

    static void addExpertValues(Tensor dGates, Tensor topIdx, float[] perExpert) {
        Check.expertSlots("addExpertValues", topIdx, dGates, perExpert.length);
        int k = topIdx.dim(1);
        int[] idx = i(topIdx);
        float[] dg = f(dGates);
        for (int c = 0, m = topIdx.size(); c < m; c++) {
            Check.expertSlot("addExpertValues", idx[o(topIdx) + c], c, k, perExpert.length);
        }
        for (int c = 0, m = topIdx.size(); c < m; c++) {
            int e = idx[o(topIdx) + c];
            if (e >= 0) {
                dg[o(dGates) + c] += perExpert[e];
            }
        }
    }
}
