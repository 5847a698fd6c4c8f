package io.roundhouse.kernels.cuda;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.Check;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.GateMode;
import io.roundhouse.kernels.Tensor;
import jcuda.Pointer;

/**
 * Routing ops of the CUDA backend (kernels in {@code routing.cu}): gating, the capacity plan
 * without a sequential pass (each copy's rank among the higher-priority copies of its expert; only
 * the per-expert counts, 2E ints, come to the host), permute / un-permute and the router's
 * statistics and loss gradients. {@code permuteBackward} builds its token → rows table on the host
 * from the row map (N·K ints). Legend as in {@link Backend}.
 */
final class CudaRouting {
    private final CudaBackend be;
    private final CudaDevice dev;
    private final CudaTensor flag;
    private CudaTensor scratchF;
    private CudaTensor scratchI;

    CudaRouting(CudaBackend be, CudaDevice dev, CudaTensor flag) {
        this.be = be;
        this.dev = dev;
        this.flag = flag;
    }

    /** A device float buffer of at least n elements, grown (rarely: the largest size seen) as needed. */
    private CudaTensor floats(int n) {
        if (scratchF == null || scratchF.size() < n) {
            scratchF = (CudaTensor) be.allocate("scratch.f", DType.FLOAT32, Math.max(n, 1024));
        }
        return scratchF;
    }

    private CudaTensor ints(int n) {
        if (scratchI == null || scratchI.size() < n) {
            scratchI = (CudaTensor) be.allocate("scratch.i", DType.INT32, Math.max(n, 1024));
        }
        return scratchI;
    }

    private static int mode(GateMode m) {
        return switch (m) {
            case SOFTMAX_TOPK -> 0;
            case SOFTMAX_TOPK_RENORM -> 1;
            case TOPK_SOFTMAX -> 2;
        };
    }

    void gateForward(Tensor probs, Tensor lse, Tensor topIdx, Tensor gates, Tensor logits, GateMode mode) {
        int n = logits.dim(0);
        int e = logits.dim(1);
        int k = topIdx.dim(1);
        Check.gateForward(probs, lse, topIdx, gates, logits);
        if (n > 0) {
            dev.bind();
            dev.launch("gateForward " + logits, "rh_gate_forward", (n + 127) / 128, 1, 128, probs, lse, topIdx, gates,
                    logits, n, e, k, mode(mode));
        }
    }

    void gateBackward(Tensor dLogits, Tensor dGates, Tensor dProbs, Tensor dLse, Tensor probs, Tensor topIdx,
                             Tensor gates, GateMode mode) {
        int n = probs.dim(0);
        int e = probs.dim(1);
        int k = topIdx.dim(1);
        Check.shape("gateBackward", dLogits, n, e);
        Check.shape("gateBackward", dGates, n, k);
        if (n > 0) {
            dev.bind();
            dev.launch("gateBackward " + probs, "rh_gate_backward", (n + 127) / 128, 1, 128, dLogits, dGates, dProbs,
                    dLse, probs, topIdx, gates, n, e, k, mode(mode));
        }
    }

    void sigmoidTopKForward(Tensor probs, Tensor lse, Tensor topIdx, Tensor gates, Tensor logits, Tensor bias) {
        Check.sigmoidTopKForward(probs, lse, topIdx, gates, logits, bias);
        int n = logits.dim(0);
        if (n > 0) {
            dev.bind();
            dev.launch("sigmoidTopKForward " + logits, "rh_sigmoid_topk_forward", (n + 127) / 128, 1, 128, probs, lse,
                    topIdx, gates, logits, bias, n, logits.dim(1), topIdx.dim(1));
        }
    }

    void sigmoidTopKBackward(Tensor dLogits, Tensor dGates, Tensor dProbs, Tensor dLse, Tensor logits, Tensor lse,
                             Tensor topIdx, Tensor gates) {
        Check.sigmoidTopKBackward(dLogits, dGates, dProbs, dLse, logits, lse, topIdx, gates);
        int n = logits.dim(0);
        if (n > 0) {
            dev.bind();
            dev.launch("sigmoidTopKBackward " + logits, "rh_sigmoid_topk_backward", (n + 127) / 128, 1, 128, dLogits,
                    dGates, dProbs, dLse, logits, lse, topIdx, gates, n, logits.dim(1), topIdx.dim(1));
        }
    }

    /**
     * The capacity plan on the device: each copy's rank among the higher-priority copies of its
     * expert (priority: choice, then token) decides whether it is kept and its row, which is the
     * CPU plan's result; only the per-expert counts (2E ints) come to the host.
     */
    int dispatchPlan(Tensor rowToken, Tensor copyRow, int[] offsets, int[] selected, Tensor topIdx,
                            int numExperts, int capacity) {
        int n = topIdx.dim(0);
        int k = topIdx.dim(1);
        Check.dispatchPlan(rowToken, copyRow, offsets, selected, n, k, numExperts);
        java.util.Arrays.fill(offsets, 0);
        java.util.Arrays.fill(selected, 0);
        if (n == 0) {
            return 0;
        }
        int copies = n * k;
        CudaTensor scratch = ints(copies + 3 * numExperts + 1);
        Tensor rank = scratch.rows(0, copies);
        Tensor counts = scratch.rows(copies, 2 * numExperts);
        Tensor groups = scratch.rows(copies + 2 * numExperts, numExperts + 1);
        dev.bind();
        dev.memset32("dispatchPlan", flag.ptr(), 0, 1);
        dev.launch("dispatchPlan rank", "rh_plan_rank", (copies + 127) / 128, 1, 128, rank, topIdx, n, k);
        dev.launch("dispatchPlan counts", "rh_plan_counts", (numExperts + 127) / 128, 1, 128, counts, topIdx, n, k,
                numExperts, capacity, flag);
        int[] bad = new int[1];
        dev.copyDtoH("dispatchPlan", Pointer.to(bad), flag.ptr(), 4);
        if (bad[0] != 0) {
            int[] idx = new int[copies];
            be.read(topIdx, idx);
            int r = bad[0] - 1;
            for (int s = 0; s < k; s++) {
                int e = idx[r * k + s];
                if (!(e >= -1 && e < numExperts)) {
                    throw new IllegalArgumentException("dispatchPlan: expert index " + e + " of token " + r
                            + " is outside [0, " + numExperts + ")");
                }
            }
        }
        int[] c = new int[2 * numExperts];
        be.read(counts, c);
        for (int e = 0; e < numExperts; e++) {
            selected[e] = c[e];
            offsets[e + 1] = offsets[e] + c[numExperts + e];
        }
        be.write(groups, offsets);
        dev.launch("dispatchPlan fill", "rh_plan_fill", (copies + 127) / 128, 1, 128, rowToken, copyRow, rank, topIdx,
                groups, n, k, capacity);
        return offsets[numExperts];
    }

    void selectAtLeast(Tensor copies, Tensor topIdx, Tensor gates, float threshold) {
        int n = topIdx.dim(0);
        int k = topIdx.dim(1);
        Check.shape("selectAtLeast", copies, n, k);
        Check.shape("selectAtLeast", gates, n, k);
        be.grid("selectAtLeast", "rh_select_at_least", (long) n * k, copies, topIdx, gates, threshold, n * k);
    }

    void permuteForward(Tensor xp, Tensor x, Tensor rowToken, int m) {
        int d = x.rowSize();
        Check.atLeastRows("permuteForward", xp, m, d);
        be.grid("permuteForward", "rh_permute_forward", (long) m * d, xp, x, rowToken, m, d);
    }

    /**
     * The unweighted un-permute; each token's copies are summed in row order. The token → rows
     * table is built on the device (a stable counting sort: rh_token_rows_*), so nothing waits for
     * a copy through the host.
     */
    void permuteBackward(Tensor dx, Tensor dxp, Tensor rowToken, int m) {
        int d = dx.rowSize();
        int n = dx.dim(0);
        Check.atLeastRows("permuteBackward", dxp, m, d);
        Check.atLeastRows("permuteBackward", rowToken, m, rowToken.rowSize());
        // scratch: rank [m], count [n], start [n + 1], rows [m]
        CudaTensor scratch = ints(2 * m + 2 * n + 1);
        Tensor rank = scratch.rows(0, m);
        Tensor count = scratch.rows(m, n);
        Tensor start = scratch.rows(m + n, n + 1);
        Tensor rows = scratch.rows(m + 2 * n + 1, m);
        dev.bind();
        if (n > 0) {
            dev.memset32("permuteBackward", ((CudaTensor) count).ptr(), 0, n);
        }
        if (m > 0) {
            dev.launch("permuteBackward rank", "rh_token_rows_rank", (m + 127) / 128, 1, 128, rank, count, rowToken,
                    m, n);
        }
        dev.launch("permuteBackward starts", "rh_token_rows_starts", 1, 1, 1024, start, count, n);
        be.grid("permuteBackward fill", "rh_token_rows_fill", m, rows, start, rank, rowToken, m, n);
        be.grid("permuteBackward", "rh_permute_backward", (long) n * d, dx, dxp, rows, start, n, d);
    }

    void unpermuteForward(Tensor y, Tensor yp, Tensor copyRow, Tensor gates) {
        int n = y.dim(0);
        int d = y.rowSize();
        int k = copyRow.dim(1);
        Check.shape("unpermuteForward", copyRow, n, k);
        be.grid("unpermuteForward", "rh_unpermute_forward", (long) n * d, y, yp, copyRow, gates, n, d, k);
    }

    void unpermuteBackward(Tensor dyp, Tensor dGates, Tensor dy, Tensor yp, Tensor copyRow, Tensor gates) {
        int n = dy.dim(0);
        int d = dy.rowSize();
        int k = copyRow.dim(1);
        Check.shape("unpermuteBackward", copyRow, n, k);
        be.grid("unpermuteBackward", "rh_unpermute_backward_rows", (long) n * k * d, dyp, dy, copyRow, gates, n, d, k);
        if (dGates != null && n > 0) {
            dev.bind();
            dev.launch("unpermuteBackward gates", "rh_unpermute_backward_gates", (n * k + 127) / 128, 1, 128, dGates,
                    dy, yp, copyRow, n, d, k);
        }
    }

    void routerStats(Tensor probs, float[] probSums) {
        int n = probs.dim(0);
        int e = probs.dim(1);
        if (!(probSums.length == e)) {
            throw new IllegalArgumentException("routerStats: probSums has " + probSums.length
                    + " entries, expected E = " + e);
        }
        CudaTensor out = floats(e);
        dev.bind();
        dev.launch("routerStats", "rh_column_sums_double", (e + 127) / 128, 1, 128, out, probs, n, e);
        be.read(out.rows(0, e), probSums);
    }

    /** Each row's entropy on the device (one thread per row), summed here in row order. */
    double routerEntropy(Tensor probs) {
        int n = probs.dim(0);
        int e = probs.dim(1);
        if (n == 0) {
            return 0;
        }
        CudaTensor out = floats(n);
        dev.bind();
        dev.launch("routerEntropy", "rh_row_entropy", (n + 127) / 128, 1, 128, out, probs, n, e);
        float[] rows = new float[n];
        be.read(out.rows(0, n), rows);
        double sum = 0;
        for (float h : rows) {
            sum += h;
        }
        return sum;
    }

    void routerLossBackward(Tensor dProbs, Tensor dLse, Tensor lse, int[] selected, int totalTokens, int k,
                                   float alpha, float beta, float dLoss) {
        int n = lse.dim(0);
        int e = selected.length;
        Check.shape("routerLossBackward", dProbs, n, e);
        Check.shape("routerLossBackward", dLse, n);
        double t = totalTokens;
        float[] column = new float[e];
        for (int j = 0; j < e; j++) {
            column[j] = (float) (dLoss * alpha * e * (selected[j] / (t * k)) / t);
        }
        CudaTensor c = floats(e);
        be.write(c.rows(0, e), column);
        be.grid("routerLossBackward", "rh_router_loss_backward", (long) n * e, dProbs, dLse, lse, c, n, e,
                (float) (dLoss * 2 * beta / t));
    }
}
