package io.roundhouse.kernels.cpu;

import io.roundhouse.kernels.Activation;
import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.Blas;
import io.roundhouse.kernels.Check;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.GateMode;
import io.roundhouse.kernels.HostBuffer;
import io.roundhouse.kernels.Precision;
import io.roundhouse.kernels.Tensor;

/**
 * The reference backend: tensors in Java arrays, GEMMs through {@link Blas} (OpenBLAS), everything
 * else as plain loops written so that HotSpot's C2 vectorises them (one index per loop, no calls
 * but intrinsics). Routing ops live in {@link CpuRouting}. See {@link Backend} for the dimension
 * legend and the assign/accumulate convention.
 *
 * <p>Not thread-safe: it keeps workspace for the activation ops ({@link CpuActivations}). Use one
 * instance per worker.
 */
public final class CpuBackend implements Backend {
    private final CpuActivationRows activations = new CpuActivationRows();
    private final CpuPermutes permutes = new CpuPermutes();
    private final CpuExperts experts = new CpuExperts(this, activations);
    private final CpuTransformer transformer = new CpuTransformer();
    /** Workspace for the bf16-rounded GEMM operands, by slot; each grows to its largest operand once. */
    private final float[][] roundedSlots = new float[4][0];

    @Override
    public String name() {
        return "cpu(" + Blas.implementation() + ")";
    }

    // ---- memory -------------------------------------------------------------------------------

    @Override
    public Tensor allocate(String name, DType dtype, int... shape) {
        long n = 1;
        for (int d : shape) {
            n *= Math.max(d, 0);
        }
        if (n > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("tensor '" + name + "' is too large for the CPU backend");
        }
        return dtype == DType.FLOAT32
                ? new CpuTensor(name, dtype, shape, new float[(int) n], null, 0)
                : new CpuTensor(name, dtype, shape, null, new int[(int) n], 0);
    }

    static CpuTensor c(Tensor t) {
        if (!(t instanceof CpuTensor)) {
            throw new IllegalArgumentException("tensor " + t + " does not belong to the CPU backend");
        }
        return (CpuTensor) t;
    }

    static float[] f(Tensor t) {
        CpuTensor ct = c(t);
        if (ct.f == null) {
            throw new IllegalArgumentException("tensor " + t + " is not FLOAT32");
        }
        return ct.f;
    }

    static int[] i(Tensor t) {
        CpuTensor ct = c(t);
        if (ct.i == null) {
            throw new IllegalArgumentException("tensor " + t + " is not INT32");
        }
        return ct.i;
    }

    static int o(Tensor t) {
        return c(t).off;
    }

    @Override
    public void write(Tensor t, float[] src, int off) {
        System.arraycopy(src, off, f(t), o(t), t.size());
    }

    @Override
    public void write(Tensor t, int[] src) {
        System.arraycopy(src, 0, i(t), o(t), t.size());
    }

    @Override
    public void read(Tensor t, float[] dst, int off) {
        System.arraycopy(f(t), o(t), dst, off, t.size());
    }

    @Override
    public void read(Tensor t, int[] dst) {
        System.arraycopy(i(t), o(t), dst, 0, t.size());
    }

    @Override
    public HostBuffer allocateHost(String name, int floats) {
        return HostBuffer.direct(name, floats);
    }

    @Override
    public void read(Tensor t, HostBuffer dst, int off) {
        dst.checkFits("read", t, off);
        dst.put(off, f(t), o(t), t.size());
    }

    @Override
    public void write(Tensor t, HostBuffer src, int off) {
        src.checkFits("write", t, off);
        src.get(off, f(t), o(t), t.size());
    }

    @Override
    public void writeRows(Tensor t, int row0, int rows, HostBuffer src, int off) {
        int w = t.rowSize();
        if (row0 < 0 || rows < 0 || row0 + rows > t.dim(0) || off < 0 || off + rows * w > src.capacity()) {
            throw new IllegalArgumentException("writeRows: rows [" + row0 + ", " + (row0 + rows) + ") of " + t + " from "
                    + src + " at " + off);
        }
        src.get(off, f(t), o(t) + row0 * w, rows * w);
    }

    @Override
    public void readRows(Tensor t, int row0, int rows, HostBuffer dst, int off) {
        int w = t.rowSize();
        if (row0 < 0 || rows < 0 || row0 + rows > t.dim(0) || off < 0 || off + rows * w > dst.capacity()) {
            throw new IllegalArgumentException("readRows: rows [" + row0 + ", " + (row0 + rows) + ") of " + t + " into "
                    + dst + " at " + off);
        }
        dst.put(off, f(t), o(t) + row0 * w, rows * w);
    }

    @Override
    public void fill(Tensor t, float value) {
        if (t.dtype() == DType.INT32) {
            java.util.Arrays.fill(i(t), o(t), o(t) + t.size(), (int) value);
        } else {
            java.util.Arrays.fill(f(t), o(t), o(t) + t.size(), value);
        }
    }

    @Override
    public void copy(Tensor dst, Tensor src) {
        Check.sameSize("copy", dst, src);
        if (src.dtype() == DType.INT32) {
            System.arraycopy(i(src), o(src), i(dst), o(dst), src.size());
        } else {
            System.arraycopy(f(src), o(src), f(dst), o(dst), src.size());
        }
    }

    @Override
    public void axpy(Tensor y, float alpha, Tensor x) {
        Check.sameSize("axpy", y, x);
        float[] ya = f(y);
        float[] xa = f(x);
        int yo = o(y);
        int xo = o(x);
        if (yo == xo) {
            // One index for both arrays lets C2 vectorise (3x here; the usual case: whole tensors and
            // their leading rows).
            for (int j = yo, end = yo + y.size(); j < end; j++) {
                ya[j] += alpha * xa[j];
            }
            return;
        }
        for (int j = 0, n = y.size(); j < n; j++) {
            ya[yo + j] += alpha * xa[xo + j];
        }
    }

    @Override
    public void scale(Tensor t, float alpha) {
        float[] a = f(t);
        for (int j = o(t), end = o(t) + t.size(); j < end; j++) {
            a[j] *= alpha;
        }
    }

    @Override
    public double sumSquares(Tensor t) {
        return Blas.sumSquares(t.size(), f(t), o(t));
    }

    // ---- dense layers -------------------------------------------------------------------------

    @Override
    public void linearForward(Tensor y, Tensor x, Tensor w, Tensor b, Precision p) {
        int n = x.dim(0);
        int in = w.dim(0);
        int out = w.dim(1);
        Check.linearForward(y, x, w, b);
        boolean bf16 = p == Precision.BF16;
        gemmBias(f(y), o(y), bf16 ? rounded(0, x) : f(x), bf16 ? 0 : o(x), bf16 ? rounded(1, w) : f(w),
                bf16 ? 0 : o(w), b == null ? null : f(b), b == null ? 0 : o(b), n, in, out);
    }

    @Override
    public void linearBackward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w, Precision p) {
        int n = x.dim(0);
        int in = w.dim(0);
        int out = w.dim(1);
        Check.linearBackward(dx, dw, dy, x, w);
        boolean bf16 = p == Precision.BF16;
        gemmBiasBackward(dx == null ? null : f(dx), dx == null ? 0 : o(dx), f(dw), o(dw),
                db == null ? null : f(db), db == null ? 0 : o(db), f(dy), o(dy),
                bf16 ? rounded(0, dy) : f(dy), bf16 ? 0 : o(dy), bf16 ? rounded(1, x) : f(x), bf16 ? 0 : o(x),
                bf16 ? rounded(2, w) : f(w), bf16 ? 0 : o(w), n, in, out);
    }

    @Override
    public void linearTransposedForward(Tensor y, Tensor x, Tensor w) {
        int n = x.dim(0);
        int out = w.dim(0);
        int in = w.dim(1);
        Check.linearTransposed(y, x, w);
        Blas.sgemm(false, true, n, out, in, 1f, f(x), o(x), in, f(w), o(w), in, 0f, f(y), o(y), out);
    }

    /** {@code t}'s values rounded to bf16, in workspace slot {@code slot} from index 0. */
    float[] rounded(int slot, Tensor t) {
        return rounded(slot, f(t), o(t), t.size());
    }

    /** {@code src[off, off + n)} rounded to bf16, in workspace slot {@code slot} from index 0. */
    float[] rounded(int slot, float[] src, int off, int n) {
        if (roundedSlots[slot].length < n) {
            roundedSlots[slot] = new float[n];
        }
        Precision.bf16(src, off, roundedSlots[slot], n);
        return roundedSlots[slot];
    }

    /** y[n,out] = x[n,in]·w[in,out] + b[out] on raw arrays. */
    static void gemmBias(float[] y, int yo, float[] x, int xo, float[] w, int wo, float[] b, int bo,
                                 int n, int in, int out) {
        if (b != null) {
            // Start every row from the bias and let the GEMM accumulate onto it (beta = 1).
            for (int r = 0; r < n; r++) {
                System.arraycopy(b, bo, y, yo + r * out, out);
            }
        }
        Blas.sgemm(false, false, n, out, in, 1f, x, xo, in, w, wo, out, b == null ? 0f : 1f, y, yo, out);
    }

    /**
     * dx = dyG·wᵀ (if dx != null), dw += xᵀ·dyG, db += Σ dy (if db != null), on raw arrays; dyG is
     * dy as the GEMMs take it (dy itself, or rounded to bf16).
     */
    static void gemmBiasBackward(float[] dx, int dxo, float[] dw, int dwo, float[] db, int dbo,
                                         float[] dy, int dyo, float[] dyG, int dyGo, float[] x, int xo, float[] w,
                                         int wo, int n, int in, int out) {
        if (dx != null) {
            Blas.sgemm(false, true, n, in, out, 1f, dyG, dyGo, out, w, wo, out, 0f, dx, dxo, in);
        }
        Blas.sgemm(true, false, in, out, n, 1f, x, xo, in, dyG, dyGo, out, 1f, dw, dwo, out);
        if (db != null) {
            Blas.addColumnSums(n, out, 1f, dy, dyo, out, db, dbo);
        }
    }

    @Override
    public void activationForward(Tensor h, Tensor a, Activation act) {
        int n = a.dim(0);
        int f = h.dim(1);
        Check.activation("activationForward", a, h, act);
        activations.forward(f(h), o(h), f(a), o(a), n, f, act);
    }

    @Override
    public void activationBackward(Tensor da, Tensor dh, Tensor a, Activation act) {
        int n = a.dim(0);
        int f = dh.dim(1);
        Check.activation("activationBackward", a, dh, act);
        Check.activation("activationBackward", da, dh, act);
        activations.backward(f(da), o(da), f(dh), o(dh), f(a), o(a), n, f, act);
    }

    @Override
    public void expertFfnForward(Tensor y, Tensor a, Tensor h, Tensor x, Tensor w1, Tensor b1, Tensor w2,
                                 Tensor b2, int[] offsets, Activation act, Precision p) {
        experts.forward(y, a, h, x, w1, b1, w2, b2, offsets, act, p);
    }

    @Override
    public void expertFfnBackwardData(Tensor dx, Tensor dy, Tensor a, Tensor w1, Tensor w2, int[] offsets,
                                      Activation act, Tensor scratchDh, Tensor scratchDa, Precision p) {
        experts.backwardData(dx, dy, a, w1, w2, offsets, act, scratchDh, scratchDa, p);
    }

    @Override
    public void expertFfnBackwardWeights(Tensor dw1, Tensor db1, Tensor dw2, Tensor db2, Tensor dy, Tensor x,
                                         Tensor h, int[] offsets, Tensor scratchDa, Precision p) {
        experts.backwardWeights(dw1, db1, dw2, db2, dy, x, h, offsets, scratchDa, p);
    }

    @Override
    public void normForward(Tensor y, Tensor mean, Tensor rstd, Tensor x, Tensor gamma, Tensor beta, float eps) {
        int n = x.dim(0);
        int d = x.dim(1);
        Check.normForward(y, mean, rstd, x, gamma);
        float[] xa = f(x);
        float[] ya = f(y);
        float[] g = f(gamma);
        float[] bt = beta == null ? null : f(beta);
        for (int r = 0; r < n; r++) {
            int xr = o(x) + r * d;
            int yr = o(y) + r * d;
            double mu = 0;
            if (beta != null) {
                for (int j = 0; j < d; j++) {
                    mu += xa[xr + j];
                }
                mu /= d;
            }
            double var = 0;
            for (int j = 0; j < d; j++) {
                double c = xa[xr + j] - mu;
                var += c * c;
            }
            float rs = (float) (1.0 / Math.sqrt(var / d + eps));
            float m = (float) mu;
            f(mean)[o(mean) + r] = m;
            f(rstd)[o(rstd) + r] = rs;
            for (int j = 0; j < d; j++) {
                float v = (xa[xr + j] - m) * rs * g[o(gamma) + j];
                ya[yr + j] = bt == null ? v : v + bt[o(beta) + j];
            }
        }
    }

    @Override
    public void normBackward(Tensor dx, Tensor dgamma, Tensor dbeta, Tensor dy, Tensor x, Tensor mean,
                             Tensor rstd, Tensor gamma) {
        int n = x.dim(0);
        int d = x.dim(1);
        Check.shape("normBackward", dx, n, d);
        Check.shape("normBackward", dy, n, d);
        Check.shape("normBackward", dgamma, d);
        float[] xa = f(x);
        float[] dya = f(dy);
        float[] dxa = f(dx);
        float[] g = f(gamma);
        float[] dg = f(dgamma);
        for (int r = 0; r < n; r++) {
            int xr = o(x) + r * d;
            int dyr = o(dy) + r * d;
            int dxr = o(dx) + r * d;
            float m = f(mean)[o(mean) + r];
            float rs = f(rstd)[o(rstd) + r];
            double sumDxhat = 0;
            double sumDxhatXhat = 0;
            for (int j = 0; j < d; j++) {
                float xhat = (xa[xr + j] - m) * rs;
                float dxhat = dya[dyr + j] * g[o(gamma) + j];
                sumDxhat += dxhat;
                sumDxhatXhat += dxhat * xhat;
                dg[o(dgamma) + j] += dya[dyr + j] * xhat;
                if (dbeta != null) {
                    f(dbeta)[o(dbeta) + j] += dya[dyr + j];
                }
            }
            // LayerNorm subtracts the mean of dxhat (the mean was normalised away); RMSNorm does not.
            float meanDxhat = dbeta == null ? 0f : (float) (sumDxhat / d);
            float meanDxhatXhat = (float) (sumDxhatXhat / d);
            for (int j = 0; j < d; j++) {
                float xhat = (xa[xr + j] - m) * rs;
                float dxhat = dya[dyr + j] * g[o(gamma) + j];
                dxa[dxr + j] = rs * (dxhat - meanDxhat - xhat * meanDxhatXhat);
            }
        }
    }

    @Override
    public void dropoutForward(Tensor y, Tensor x, float p, long seed, long stream, long firstElement) {
        CpuElementwise.dropout("dropoutForward", y, x, p, seed, stream, firstElement);
    }

    @Override
    public void dropoutBackward(Tensor dx, Tensor dy, float p, long seed, long stream, long firstElement) {
        CpuElementwise.dropout("dropoutBackward", dx, dy, p, seed, stream, firstElement);
    }

    @Override
    public void dropoutRowsForward(Tensor y, Tensor x, Tensor rates, long seed, long stream, long firstElement) {
        CpuElementwise.dropoutRows("dropoutRowsForward", y, x, rates, seed, stream, firstElement);
    }

    @Override
    public void dropoutRowsBackward(Tensor dx, Tensor dy, Tensor rates, long seed, long stream, long firstElement) {
        CpuElementwise.dropoutRows("dropoutRowsBackward", dx, dy, rates, seed, stream, firstElement);
    }

    @Override
    public void jitter(Tensor y, Tensor x, Tensor amplitude, long seed, long stream, long firstElement) {
        CpuElementwise.jitter(y, x, amplitude, seed, stream, firstElement);
    }

    // ---- element-wise (CpuElementwise) ----------------------------------------------------------

    @Override
    public void rope(Tensor y, Tensor x, int headDim, int period, int firstPos, float theta, boolean inverse) {
        transformer.rope(y, x, headDim, period, firstPos, theta, inverse);
    }

    @Override
    public void attentionForward(Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v, int batch, int heads,
                                 int kvHeads, float scale, Tensor rates, long seed, long stream, long firstSequence) {
        transformer.attentionForward(out, lse, q, k, v, batch, heads, kvHeads, scale, rates, seed, stream,
                firstSequence);
    }

    @Override
    public void attentionBackward(Tensor dq, Tensor dk, Tensor dv, Tensor dOut, Tensor out, Tensor lse, Tensor q,
                                  Tensor k, Tensor v, int batch, int heads, int kvHeads, float scale, Tensor rates,
                                  long seed, long stream, long firstSequence) {
        transformer.attentionBackward(dq, dk, dv, dOut, out, lse, q, k, v, batch, heads, kvHeads, scale, rates, seed,
                stream, firstSequence);
    }

    @Override
    public void sigmoidGateForward(Tensor y, Tensor x, Tensor g) {
        transformer.sigmoidGateForward(y, x, g);
    }

    @Override
    public void sigmoidGateBackward(Tensor dx, Tensor dg, Tensor dy, Tensor x, Tensor g) {
        transformer.sigmoidGateBackward(dx, dg, dy, x, g);
    }

    @Override
    public void patchesForward(Tensor xp, Tensor x, int channels, int side, int patch) {
        CpuImage.patchesForward(xp, x, channels, side, patch);
    }

    @Override
    public void patchesBackward(Tensor dx, Tensor dxp, int channels, int side, int patch) {
        CpuImage.patchesBackward(dx, dxp, channels, side, patch);
    }

    @Override
    public void transposeGroups(Tensor y, Tensor x, int groups) {
        CpuImage.transposeGroups(y, x, groups);
    }

    @Override
    public void meanGroupsForward(Tensor y, Tensor x, int groups) {
        CpuImage.meanGroupsForward(y, x, groups);
    }

    @Override
    public void meanGroupsBackward(Tensor dx, Tensor dy, int groups) {
        CpuImage.meanGroupsBackward(dx, dy, groups);
    }

    @Override
    public void multiply(Tensor y, Tensor a, Tensor b) {
        CpuElementwise.multiply("multiply", y, a, b, false);
    }

    @Override
    public void multiplyAdd(Tensor y, Tensor a, Tensor b) {
        CpuElementwise.multiply("multiplyAdd", y, a, b, true);
    }

    @Override
    public void sumRowProducts(Tensor acc, Tensor a, Tensor b) {
        CpuElementwise.sumRowProducts(acc, a, b);
    }

    @Override
    public void scaleRows(Tensor t, Tensor s) {
        CpuElementwise.scaleRows(t, s);
    }

    // ---- routing (CpuRouting) -----------------------------------------------------------------

    @Override
    public void gateForward(Tensor probs, Tensor lse, Tensor topIdx, Tensor gates, Tensor logits, GateMode mode) {
        CpuRouting.gateForward(probs, lse, topIdx, gates, logits, mode);
    }

    @Override
    public void gateBackward(Tensor dLogits, Tensor dGates, Tensor dProbs, Tensor dLse, Tensor probs,
                             Tensor topIdx, Tensor gates, GateMode mode) {
        CpuRouting.gateBackward(dLogits, dGates, dProbs, dLse, probs, topIdx, gates, mode);
    }

    @Override
    public void sigmoidTopKForward(Tensor probs, Tensor lse, Tensor topIdx, Tensor gates, Tensor logits, Tensor bias) {
        CpuRouting.sigmoidTopKForward(probs, lse, topIdx, gates, logits, bias);
    }

    @Override
    public void sigmoidTopKBackward(Tensor dLogits, Tensor dGates, Tensor dProbs, Tensor dLse, Tensor logits, Tensor lse,
                                    Tensor topIdx, Tensor gates) {
        CpuRouting.sigmoidTopKBackward(dLogits, dGates, dProbs, dLse, logits, lse, topIdx, gates);
    }

    @Override
    public void selectAtLeast(Tensor copies, Tensor topIdx, Tensor gates, float threshold) {
        CpuRouting.selectAtLeast(copies, topIdx, gates, threshold);
    }

    @Override
    public int dispatchPlan(Tensor rowToken, Tensor copyRow, int[] offsets, int[] selected, Tensor topIdx,
                            int numExperts, int capacity) {
        return CpuRouting.dispatchPlan(rowToken, copyRow, offsets, selected, topIdx, numExperts, capacity);
    }

    @Override
    public void permuteForward(Tensor xp, Tensor x, Tensor rowToken, int m) {
        permutes.permuteForward(xp, x, rowToken, m);
    }

    @Override
    public void permuteBackward(Tensor dx, Tensor dxp, Tensor rowToken, int m) {
        permutes.permuteBackward(dx, dxp, rowToken, m);
    }

    @Override
    public void unpermuteForward(Tensor y, Tensor yp, Tensor copyRow, Tensor gates) {
        permutes.unpermuteForward(y, yp, copyRow, gates);
    }

    @Override
    public void unpermuteBackward(Tensor dyp, Tensor dGates, Tensor dy, Tensor yp, Tensor copyRow, Tensor gates) {
        permutes.unpermuteBackward(dyp, dGates, dy, yp, copyRow, gates);
    }

    @Override
    public void routerStats(Tensor probs, float[] probSums) {
        CpuRouting.routerStats(probs, probSums);
    }

    @Override
    public double routerEntropy(Tensor probs) {
        return CpuRouting.routerEntropy(probs);
    }

    @Override
    public float[] routerLossForward(Tensor lse, int[] selected, float[] probSums, int totalTokens, int k, float alpha,
                                     float beta, float[] out) {
        return CpuRouting.routerLossForward(lse, selected, probSums, totalTokens, k, alpha, beta, out);
    }

    @Override
    public void routerLossBackward(Tensor dProbs, Tensor dLse, Tensor lse, int[] selected, int totalTokens, int k,
                                   float alpha, float beta, float dLoss) {
        CpuRouting.routerLossBackward(dProbs, dLse, lse, selected, totalTokens, k, alpha, beta, dLoss);
    }

    // ---- the noisy top-k router (CpuNoisyRouting) ----

    @Override
    public void noisyLogitsForward(Tensor noisy, Tensor clean, Tensor raw, long seed, long stream, long firstElement) {
        CpuNoisyRouting.noisyLogitsForward(noisy, clean, raw, seed, stream, firstElement);
    }

    @Override
    public void noisyLogitsBackward(Tensor dRaw, Tensor dNoisy, Tensor raw, long seed, long stream, long firstElement) {
        CpuNoisyRouting.noisyLogitsBackward(dRaw, dNoisy, raw, seed, stream, firstElement);
    }

    @Override
    public void noisyTopKLoadForward(Tensor load, Tensor clean, Tensor noisy, Tensor raw, int k) {
        CpuNoisyRouting.noisyTopKLoadForward(load, clean, noisy, raw, k);
    }

    @Override
    public void noisyTopKLoadBackward(Tensor dClean, Tensor dNoisy, Tensor dRaw, Tensor dLoad, Tensor clean,
                                      Tensor noisy, Tensor raw, int k) {
        CpuNoisyRouting.noisyTopKLoadBackward(dClean, dNoisy, dRaw, dLoad, clean, noisy, raw, k);
    }

    @Override
    public void expertGateSums(Tensor topIdx, Tensor gates, float[] sums) {
        CpuNoisyRouting.expertGateSums(topIdx, gates, sums);
    }

    @Override
    public void addExpertValues(Tensor dGates, Tensor topIdx, float[] perExpert) {
        CpuNoisyRouting.addExpertValues(dGates, topIdx, perExpert);
    }

    // ---- loss and optimizer -------------------------------------------------------------------

    @Override
    public void crossEntropyForward(Tensor losses, Tensor probs, Tensor logits, Tensor labels) {
        int n = logits.dim(0);
        int classes = logits.dim(1);
        Check.crossEntropyForward(losses, probs, logits, labels);
        float[] l = f(logits);
        float[] p = f(probs);
        int[] y = i(labels);
        for (int r = 0; r < n; r++) {
            int label = y[o(labels) + r];
            if (label < 0 || label >= classes) {  // the message only when it fails: this runs per row per step
                throw new IllegalArgumentException("crossEntropyForward: label " + label + " at row " + r
                        + " is outside [0, " + classes + ")");
            }
            int lr = o(logits) + r * classes;
            int pr = o(probs) + r * classes;
            float lse = CpuRouting.softmaxRow(l, lr, p, pr, classes);
            f(losses)[o(losses) + r] = lse - l[lr + label];
        }
    }

    @Override
    public void crossEntropyBackward(Tensor dLogits, Tensor probs, Tensor labels, float scale) {
        int n = probs.dim(0);
        int classes = probs.dim(1);
        Check.shape("crossEntropyBackward", dLogits, n, classes);
        float[] p = f(probs);
        float[] dl = f(dLogits);
        int[] y = i(labels);
        for (int r = 0; r < n; r++) {
            int pr = o(probs) + r * classes;
            int dr = o(dLogits) + r * classes;
            for (int j = 0; j < classes; j++) {
                dl[dr + j] = scale * p[pr + j];
            }
            dl[dr + y[o(labels) + r]] -= scale;
        }
    }

    @Override
    public void adamWStep(Tensor w, Tensor g, Tensor m, Tensor v, float lr, float beta1, float beta2,
                          float eps, float weightDecay, int t) {
        Check.adamW(w, g, m, v, t);
        float c1 = (float) (1.0 / (1.0 - Math.pow(beta1, t)));
        float c2 = (float) (1.0 / (1.0 - Math.pow(beta2, t)));
        float[] wa = f(w);
        float[] ga = f(g);
        float[] ma = f(m);
        float[] va = f(v);
        int wo = o(w);
        int go = o(g);
        int mo = o(m);
        int vo = o(v);
        int n = w.size();
        if (wo == go && wo == mo && wo == vo) {
            // One index for all four arrays lets C2 vectorise (parameters are whole tensors).
            for (int j = wo, end = wo + n; j < end; j++) {
                float gj = ga[j];
                float mj = beta1 * ma[j] + (1f - beta1) * gj;
                float vj = beta2 * va[j] + (1f - beta2) * gj * gj;
                ma[j] = mj;
                va[j] = vj;
                wa[j] -= lr * (mj * c1 / ((float) Math.sqrt(vj * c2) + eps) + weightDecay * wa[j]);
            }
            return;
        }
        for (int j = 0; j < n; j++) {
            float gj = ga[go + j];
            float mj = beta1 * ma[mo + j] + (1f - beta1) * gj;
            float vj = beta2 * va[vo + j] + (1f - beta2) * gj * gj;
            ma[mo + j] = mj;
            va[vo + j] = vj;
            float wj = wa[wo + j];
            wa[wo + j] = wj - lr * (mj * c1 / ((float) Math.sqrt(vj * c2) + eps) + weightDecay * wj);
        }
    }

    @Override
    public void close() {
        // Java arrays: nothing to release.
    }
}
