package io.roundhouse.kernels.cpu;

import static io.roundhouse.kernels.cpu.CpuBackend.f;
import static io.roundhouse.kernels.cpu.CpuBackend.i;
import static io.roundhouse.kernels.cpu.CpuBackend.o;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.Check;
import io.roundhouse.kernels.GateMode;
import io.roundhouse.kernels.Tensor;

/**
 * Routing ops of the CPU backend: gating, the capacity-limited dispatch plan, permute/un-permute
 * and the router's auxiliary losses. Legend as in {@link Backend}.
 */
public final class CpuRouting {
    private CpuRouting() {
    }

    /** probs[po, po+n) = softmax(logits[lo, lo+n)); returns logsumexp. */
    static float softmaxRow(float[] logits, int lo, float[] probs, int po, int n) {
        float max = Float.NEGATIVE_INFINITY;
        for (int j = 0; j < n; j++) {
            max = Math.max(max, logits[lo + j]);
        }
        double sum = 0;
        for (int j = 0; j < n; j++) {
            float e = (float) Math.exp(logits[lo + j] - max);
            probs[po + j] = e;
            sum += e;
        }
        float inv = (float) (1.0 / sum);
        for (int j = 0; j < n; j++) {
            probs[po + j] *= inv;
        }
        return max + (float) Math.log(sum);
    }

    static void gateForward(Tensor probs, Tensor lse, Tensor topIdx, Tensor gates, Tensor logits, GateMode mode) {
        int n = logits.dim(0);
        int e = logits.dim(1);
        int k = topIdx.dim(1);
        Check.gateForward(probs, lse, topIdx, gates, logits);
        float[] l = f(logits);
        float[] p = f(probs);
        int[] idx = i(topIdx);
        float[] g = f(gates);
        for (int r = 0; r < n; r++) {
            int lr = o(logits) + r * e;
            int pr = o(probs) + r * e;
            int kr = o(topIdx) + r * k;
            int gr = o(gates) + r * k;
            f(lse)[o(lse) + r] = softmaxRow(l, lr, p, pr, e);
            topK(l, lr, null, 0, e, idx, kr, k);
            switch (mode) {
                case SOFTMAX_TOPK -> {
                    for (int s = 0; s < k; s++) {
                        g[gr + s] = p[pr + idx[kr + s]];
                    }
                }
                case SOFTMAX_TOPK_RENORM -> {
                    double sum = 0;
                    for (int s = 0; s < k; s++) {
                        sum += p[pr + idx[kr + s]];
                    }
                    for (int s = 0; s < k; s++) {
                        g[gr + s] = (float) (p[pr + idx[kr + s]] / sum);
                    }
                }
                case TOPK_SOFTMAX -> {
                    float max = l[lr + idx[kr]];
                    double sum = 0;
                    for (int s = 0; s < k; s++) {
                        float v = (float) Math.exp(l[lr + idx[kr + s]] - max);
                        g[gr + s] = v;
                        sum += v;
                    }
                    for (int s = 0; s < k; s++) {
                        g[gr + s] = (float) (g[gr + s] / sum);
                    }
                }
                default -> throw new IllegalStateException("unhandled gate mode " + mode);
            }
        }
    }

    /**
     * idx[kr, kr + k) = the k largest of {@code v[at + j] (+ bias[bo + j])} over j < e, in descending
     * order: k passes of argmax, scanning upwards with '>' so ties go to the lower index.
     */
    private static void topK(float[] v, int at, float[] bias, int bo, int e, int[] idx, int kr, int k) {
        for (int s = 0; s < k; s++) {
            int best = -1;
            float bestValue = 0;
            for (int j = 0; j < e; j++) {
                if (isChosen(idx, kr, s, j)) {
                    continue;
                }
                float value = bias == null ? v[at + j] : v[at + j] + bias[bo + j];
                if (best < 0 || value > bestValue) {
                    best = j;
                    bestValue = value;
                }
            }
            idx[kr + s] = best;
        }
    }

    private static boolean isChosen(int[] idx, int kr, int count, int j) {
        for (int s = 0; s < count; s++) {
            if (idx[kr + s] == j) {
                return true;
            }
        }
        return false;
    }

    static void gateBackward(Tensor dLogits, Tensor dGates, Tensor dProbs, Tensor dLse, Tensor probs,
                             Tensor topIdx, Tensor gates, GateMode mode) {
        int n = probs.dim(0);
        int e = probs.dim(1);
        int k = topIdx.dim(1);
        Check.shape("gateBackward", dLogits, n, e);
        Check.shape("gateBackward", dGates, n, k);
        float[] dl = f(dLogits);
        float[] dg = f(dGates);
        float[] p = f(probs);
        float[] g = f(gates);
        int[] idx = i(topIdx);
        for (int r = 0; r < n; r++) {
            int dlr = o(dLogits) + r * e;
            int pr = o(probs) + r * e;
            int kr = o(topIdx) + r * k;
            int gr = o(gates) + r * k;
            int dgr = o(dGates) + r * k;
            java.util.Arrays.fill(dl, dlr, dlr + e, 0f);
            if (mode == GateMode.SOFTMAX_TOPK) {
                // g_j = p_j on S: dh_l = p_l·(dg_l·[l∈S] − Σ_{j∈S} dg_j p_j).
                double s = 0;
                for (int q = 0; q < k; q++) {
                    s += dg[dgr + q] * p[pr + idx[kr + q]];
                }
                for (int j = 0; j < e; j++) {
                    dl[dlr + j] = (float) (-p[pr + j] * s);
                }
                for (int q = 0; q < k; q++) {
                    int j = idx[kr + q];
                    dl[dlr + j] += p[pr + j] * dg[dgr + q];
                }
            } else {
                // g = softmax over S (renormalising the full softmax is the same function of h_S).
                double s = 0;
                for (int q = 0; q < k; q++) {
                    s += g[gr + q] * dg[dgr + q];
                }
                for (int q = 0; q < k; q++) {
                    dl[dlr + idx[kr + q]] = (float) (g[gr + q] * (dg[dgr + q] - s));
                }
            }
            if (dProbs != null) {
                float[] dp = f(dProbs);
                int dpr = o(dProbs) + r * e;
                double s = 0;
                for (int j = 0; j < e; j++) {
                    s += dp[dpr + j] * p[pr + j];
                }
                for (int j = 0; j < e; j++) {
                    dl[dlr + j] += (float) (p[pr + j] * (dp[dpr + j] - s));
                }
            }
            if (dLse != null) {
                float d = f(dLse)[o(dLse) + r];
                for (int j = 0; j < e; j++) {
                    dl[dlr + j] += d * p[pr + j];
                }
            }
        }
    }

    static void sigmoidTopKForward(Tensor probs, Tensor lse, Tensor topIdx, Tensor gates, Tensor logits, Tensor bias) {
        Check.sigmoidTopKForward(probs, lse, topIdx, gates, logits, bias);
        int n = logits.dim(0);
        int e = logits.dim(1);
        int k = topIdx.dim(1);
        float[] l = f(logits);
        float[] p = f(probs);
        float[] b = f(bias);
        int[] idx = i(topIdx);
        float[] g = f(gates);
        for (int r = 0; r < n; r++) {
            int lr = o(logits) + r * e;
            int pr = o(probs) + r * e;
            int kr = o(topIdx) + r * k;
            int gr = o(gates) + r * k;
            // lse for the z-loss (probs is overwritten below)
            f(lse)[o(lse) + r] = softmaxRow(l, lr, p, pr, e);
            double total = 0;
            for (int j = 0; j < e; j++) {
                p[pr + j] = sigmoid(l[lr + j]);
                total += p[pr + j];
            }
            topK(p, pr, b, o(bias), e, idx, kr, k);
            double chosen = 0;
            for (int s = 0; s < k; s++) {
                chosen += p[pr + idx[kr + s]];
            }
            for (int s = 0; s < k; s++) {
                g[gr + s] = (float) (p[pr + idx[kr + s]] / chosen);
            }
            float inv = (float) (1 / total);
            for (int j = 0; j < e; j++) {
                p[pr + j] *= inv;
            }
        }
    }

    /** dispatchPlan's fill cursor per expert, one per thread (workers of one JVM plan at once). */
    private static final ThreadLocal<int[]> CURSOR = ThreadLocal.withInitial(() -> new int[0]);

    /** σ(x) = 1/(1 + e^(−x)) without overflow for large |x|. */
    static float sigmoid(float x) {
        return x >= 0 ? (float) (1 / (1 + Math.exp(-x))) : (float) (Math.exp(x) / (1 + Math.exp(x)));
    }

    static void sigmoidTopKBackward(Tensor dLogits, Tensor dGates, Tensor dProbs, Tensor dLse, Tensor logits, Tensor lse,
                                    Tensor topIdx, Tensor gates) {
        Check.sigmoidTopKBackward(dLogits, dGates, dProbs, dLse, logits, lse, topIdx, gates);
        int n = logits.dim(0);
        int e = logits.dim(1);
        int k = topIdx.dim(1);
        float[] dl = f(dLogits);
        float[] dg = f(dGates);
        float[] l = f(logits);
        float[] g = f(gates);
        int[] idx = i(topIdx);
        double[] s = new double[e];
        double[] ds = new double[e];
        for (int r = 0; r < n; r++) {
            int lr = o(logits) + r * e;
            int kr = o(topIdx) + r * k;
            int gr = o(gates) + r * k;
            int dgr = o(dGates) + r * k;
            double total = 0;
            for (int j = 0; j < e; j++) {
                s[j] = sigmoid(l[lr + j]);
                total += s[j];
                ds[j] = 0;
            }
            // g_q = s_q / S over the chosen: ds_q = (dg_q − Σ_p dg_p·g_p) / S
            double chosen = 0;
            double dot = 0;
            for (int q = 0; q < k; q++) {
                chosen += s[idx[kr + q]];
                dot += dg[dgr + q] * g[gr + q];
            }
            for (int q = 0; q < k; q++) {
                ds[idx[kr + q]] += (dg[dgr + q] - dot) / chosen;
            }
            if (dProbs != null) {
                // p_j = s_j / T over every expert: ds_j += (dp_j − Σ_i dp_i·p_i) / T
                float[] dp = f(dProbs);
                int dpr = o(dProbs) + r * e;
                double pdot = 0;
                for (int j = 0; j < e; j++) {
                    pdot += dp[dpr + j] * (s[j] / total);
                }
                for (int j = 0; j < e; j++) {
                    ds[j] += (dp[dpr + j] - pdot) / total;
                }
            }
            float dz = dLse == null ? 0f : f(dLse)[o(dLse) + r];
            float z = f(lse)[o(lse) + r];
            for (int j = 0; j < e; j++) {
                double v = ds[j] * s[j] * (1 - s[j]);
                if (dLse != null) {
                    v += dz * Math.exp(l[lr + j] - z);
                }
                dl[o(dLogits) + r * e + j] = (float) v;
            }
        }
    }

    static void selectAtLeast(Tensor copies, Tensor topIdx, Tensor gates, float threshold) {
        int n = topIdx.dim(0);
        int k = topIdx.dim(1);
        Check.shape("selectAtLeast", copies, n, k);
        Check.shape("selectAtLeast", gates, n, k);
        int[] c = i(copies);
        int[] idx = i(topIdx);
        float[] g = f(gates);
        for (int q = 0; q < n * k; q++) {
            c[o(copies) + q] = g[o(gates) + q] >= threshold ? idx[o(topIdx) + q] : -1;
        }
    }

    static int dispatchPlan(Tensor rowToken, Tensor copyRow, int[] offsets, int[] selected, Tensor topIdx,
                            int numExperts, int capacity) {
        int n = topIdx.dim(0);
        int k = topIdx.dim(1);
        Check.dispatchPlan(rowToken, copyRow, offsets, selected, n, k, numExperts);
        int[] idx = i(topIdx);
        int[] rows = i(copyRow);
        int[] tok = i(rowToken);
        int io = o(topIdx);
        int co = o(copyRow);
        int to = o(rowToken);
        java.util.Arrays.fill(selected, 0);
        java.util.Arrays.fill(offsets, 0);
        // Pass 1: admission in priority order (choice rank, then token); offsets[e+1] counts kept copies.
        for (int s = 0; s < k; s++) {
            for (int r = 0; r < n; r++) {
                int e = idx[io + r * k + s];
                if (e < -1 || e >= numExperts) {  // the message only when it fails: this runs per copy per step
                    throw new IllegalArgumentException("dispatchPlan: expert index " + e + " of token " + r
                            + " is outside [0, " + numExperts + ")");
                }
                if (e < 0) {  // an empty slot: no copy
                    rows[co + r * k + s] = -1;
                    continue;
                }
                selected[e]++;
                boolean keep = capacity <= 0 || offsets[e + 1] < capacity;
                if (keep) {
                    offsets[e + 1]++;
                }
                rows[co + r * k + s] = keep ? 0 : -1;
            }
        }
        for (int e = 0; e < numExperts; e++) {
            offsets[e + 1] += offsets[e];
        }
        // Pass 2: the same order fills each expert's group.
        int[] cursor = CURSOR.get();
        if (cursor.length < offsets.length) {
            cursor = new int[offsets.length];
            CURSOR.set(cursor);
        }
        System.arraycopy(offsets, 0, cursor, 0, offsets.length);
        for (int s = 0; s < k; s++) {
            for (int r = 0; r < n; r++) {
                int c = co + r * k + s;
                if (rows[c] < 0) {
                    continue;
                }
                int row = cursor[idx[io + r * k + s]]++;
                tok[to + row] = r;
                rows[c] = row;
            }
        }
        return offsets[numExperts];
    }

    static void routerStats(Tensor probs, float[] probSums) {
        int n = probs.dim(0);
        int e = probs.dim(1);
        if (!(probSums.length == e)) {
            throw new IllegalArgumentException("routerStats: probSums has " + probSums.length
                    + " entries, expected E = " + e);
        }
        float[] p = f(probs);
        for (int j = 0; j < e; j++) {
            double s = 0;
            for (int r = 0; r < n; r++) {
                s += p[o(probs) + r * e + j];
            }
            probSums[j] = (float) s;
        }
    }

    static double routerEntropy(Tensor probs) {
        int n = probs.dim(0);
        int e = probs.dim(1);
        float[] p = f(probs);
        double sum = 0;
        for (int r = 0; r < n; r++) {
            double h = 0;
            for (int j = 0; j < e; j++) {
                float v = p[o(probs) + r * e + j];
                if (v > 0) {
                    h -= v * Math.log(v);
                }
            }
            sum += (float) h;  // each row's entropy in float, as the GPU kernel writes it
        }
        return sum;
    }

    static float[] routerLossForward(Tensor lse, int[] selected, float[] probSums, int totalTokens, int k, float alpha,
                                     float beta, float[] out) {
        double z = 0;
        float[] l = f(lse);
        for (int r = 0, n = lse.dim(0); r < n; r++) {
            z += (double) l[o(lse) + r] * l[o(lse) + r];
        }
        return routerLoss(lse, selected, probSums, totalTokens, k, alpha, beta, z, out);
    }

    /**
     * The router losses from the statistics and this worker's Σ lse² (any backend computes that
     * sum its own way): {@code [α·E·Σ f_e·P_e, β·Σ lse²/T]}, written into {@code out} (returned).
     */
    public static float[] routerLoss(Tensor lse, int[] selected, float[] probSums, int totalTokens, int k, float alpha,
                              float beta, double lseSquares, float[] out) {
        int e = selected.length;
        if (!(probSums.length == e)) {
            throw new IllegalArgumentException("routerLossForward: probSums has " + probSums.length
                    + " entries, selected " + e);
        }
        if (!(totalTokens >= lse.dim(0))) {
            throw new IllegalArgumentException("routerLossForward: totalTokens " + totalTokens
                    + " < local tokens " + lse.dim(0));
        }
        double t = totalTokens;
        double lb = 0;
        for (int j = 0; j < e; j++) {
            lb += (selected[j] / (t * k)) * (probSums[j] / t);
        }
        out[0] = (float) (alpha * e * lb);
        out[1] = (float) (beta * lseSquares / t);
        return out;
    }

    static void routerLossBackward(Tensor dProbs, Tensor dLse, Tensor lse, int[] selected, int totalTokens, int k,
                                   float alpha, float beta, float dLoss) {
        int n = lse.dim(0);
        int e = selected.length;
        Check.shape("routerLossBackward", dProbs, n, e);
        Check.shape("routerLossBackward", dLse, n);
        float[] dp = f(dProbs);
        double t = totalTokens;
        for (int j = 0; j < e; j++) {
            float v = (float) (dLoss * alpha * e * (selected[j] / (t * k)) / t);
            for (int r = 0; r < n; r++) {
                dp[o(dProbs) + r * e + j] = v;
            }
        }
        float[] l = f(lse);
        float[] dl = f(dLse);
        for (int r = 0; r < n; r++) {
            dl[o(dLse) + r] = (float) (dLoss * 2 * beta * l[o(lse) + r] / t);
        }
    }
}
