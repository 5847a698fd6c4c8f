package io.roundhouse.kernels.cuda;

import io.roundhouse.kernels.Activation;
import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.Check;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.GateMode;
import io.roundhouse.kernels.HostBuffer;
import io.roundhouse.kernels.Precision;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.kernels.cpu.CpuRouting;
import java.util.List;
import jcuda.Pointer;

/**
 * The CUDA backend: every tensor in GPU memory, every op as our own kernels
 * ({@code kernels/src/main/cuda}), launched through the driver API.
 *
 * <p>The routing ops are in {@link CudaRouting}, the transformer's in {@link CudaTransformer}, the images' in
 * {@link CudaImage}. The expert
 * FFN runs each of its GEMMs over every expert's group in one launch.
 */
public final class CudaBackend implements Backend {
    private final CudaDevice dev;
    private final CudaTensor partial;   // sumSquares' per-block sums (doubles)
    private final CudaTensor flag;      // a kernel's bad-input flag (a label, an expert index)
    private final CudaRouting routing;
    private final CudaNoisyRouting noisyRouting;
    private final CudaElementwise elementwise;
    private final CudaExperts experts;
    private final CudaTransformer transformer;
    private final CudaImage image;
    private CudaTensor batchPartial;   // the batched sumSquares' per-block sums, grown once

    /** @param ordinal the GPU, as numbered by the CUDA driver */
    public CudaBackend(int ordinal) {
        this(new CudaDevice(ordinal));
    }

    /** On {@code dev} (a GPU, or the tests' launch checker). */
    CudaBackend(CudaDevice dev) {
        this.dev = dev;
        this.partial = (CudaTensor) allocate("sumSquares.partial", DType.FLOAT32, 2 * 4096);
        this.flag = (CudaTensor) allocate("bad-input.flag", DType.INT32, 1);
        this.routing = new CudaRouting(this, dev, flag);
        this.noisyRouting = new CudaNoisyRouting(this, dev, flag);
        this.elementwise = new CudaElementwise(this, dev);
        this.experts = new CudaExperts(this, dev);
        this.transformer = new CudaTransformer(this, dev);
        this.image = new CudaImage(this);
    }

    /**
     * Debugging ({@code backend.cudaSync}): waits for every kernel as it is launched, so an
     * asynchronous error is reported by the kernel that raised it, not by a later call. Slow.
     */
    public CudaBackend syncEveryKernel(boolean on) {
        dev.syncEveryOp(on);
        return this;
    }

    /** Why this backend cannot run on this machine, or null when it can. */
    public static String unavailableReason() {
        return CudaDevice.unavailableReason();
    }

    @Override
    public String name() {
        return "cuda(" + dev.ordinal() + ": " + dev.name() + ")";
    }

    static CudaTensor c(Tensor t) {
        if (!(t instanceof CudaTensor ct)) {
            throw new IllegalArgumentException(t + " is not a CUDA tensor: tensors must come from this backend");
        }
        return ct;
    }

    // ---- memory -------------------------------------------------------------------------------

    @Override
    public Tensor allocate(String name, DType dtype, int... shape) {
        dev.bind();
        long n = 1;
        for (int d : shape) {
            n *= d;
        }
        return new CudaTensor(name, dtype, shape, dev.allocate(Math.max(4, 4 * n)), 0);
    }

    /** JCuda copies raw bytes: a host array shorter than the tensor must fail here, not read past its end. */
    private static void fits(String op, Tensor t, int length, int off) {
        if (!(off >= 0 && length - off >= t.size())) {
            throw new IllegalArgumentException(op + ": " + t + " needs " + t.size() + " values, the array has "
                    + (length - off) + " from offset " + off);
        }
    }

    @Override
    public void write(Tensor t, float[] src, int off) {
        fits("write", t, src.length, off);
        toDevice("write " + t, t, Pointer.to(src).withByteOffset(4L * off));
    }

    @Override
    public void write(Tensor t, int[] src) {
        fits("write", t, src.length, 0);
        toDevice("write " + t, t, Pointer.to(src));
    }

    @Override
    public void read(Tensor t, float[] dst, int off) {
        fits("read", t, dst.length, off);
        toHost("read " + t, t, Pointer.to(dst).withByteOffset(4L * off));
    }

    @Override
    public void read(Tensor t, int[] dst) {
        fits("read", t, dst.length, 0);
        toHost("read " + t, t, Pointer.to(dst));
    }

    @Override
    public HostBuffer allocateHost(String name, int floats) {
        return dev.allocateHost(name, floats);
    }

    @Override
    public void read(Tensor t, HostBuffer dst, int off) {
        dst.checkFits("read", t, off);
        toHost("read " + t + " to " + dst, t, dev.hostPointer(dst, off));
    }

    @Override
    public void write(Tensor t, HostBuffer src, int off) {
        src.checkFits("write", t, off);
        toDevice("write " + t + " from " + src, t, dev.hostPointer(src, off));
    }

    /** The copies queue on the backend's stream (page-locked memory: they run asynchronously); one wait. */
    @Override
    public void read(List<Tensor> ts, HostBuffer dst, int[] offsets) {
        dev.bind();
        for (int i = 0; i < ts.size(); i++) {
            Tensor t = ts.get(i);
            dst.checkFits("read", t, offsets[i]);
            if (t.size() > 0) {
                dev.copyDtoHAsync("read " + t + " to " + dst, dev.hostPointer(dst, offsets[i]), c(t).ptr(),
                        4L * t.size());
            }
        }
        dev.synchronize();
    }

    /** As the batched read: the copies queue, then one wait (the host buffer may be reused after). */
    @Override
    public void write(List<Tensor> ts, HostBuffer src, int[] offsets) {
        dev.bind();
        for (int i = 0; i < ts.size(); i++) {
            Tensor t = ts.get(i);
            src.checkFits("write", t, offsets[i]);
            if (t.size() > 0) {
                dev.copyHtoDAsync("write " + t + " from " + src, c(t).ptr(), dev.hostPointer(src, offsets[i]),
                        4L * t.size());
            }
        }
        dev.synchronize();
    }

    /** A synchronous copy of {@code t}'s elements from host memory (none when t is empty). */
    private void toDevice(String op, Tensor t, Pointer src) {
        dev.bind();
        if (t.size() > 0) {
            dev.copyHtoD(op, c(t).ptr(), src, 4L * t.size());
        }
    }

    /** A synchronous copy of {@code t}'s elements to host memory, after the kernels before it. */
    private void toHost(String op, Tensor t, Pointer dst) {
        dev.bind();
        if (t.size() > 0) {
            dev.copyDtoH(op, dst, c(t).ptr(), 4L * t.size());
        }
    }

    @Override
    public void fill(Tensor t, float value) {
        grid("fill", "rh_fill", t.size(), t, value, (long) t.size());
    }

    @Override
    public void copy(Tensor dst, Tensor src) {
        Check.sameSize("copy", dst, src);
        dev.bind();
        if (src.size() > 0) {
            dev.copyDtoD("copy " + src + " to " + dst, c(dst).ptr(), c(src).ptr(), 4L * src.size());
        }
    }

    @Override
    public void axpy(Tensor y, float alpha, Tensor x) {
        Check.sameSize("axpy", y, x);
        grid("axpy", "rh_axpy", y.size(), y, alpha, x, (long) y.size());
    }

    @Override
    public void scale(Tensor t, float alpha) {
        grid("scale", "rh_scale", t.size(), t, alpha, (long) t.size());
    }

    @Override
    public double sumSquares(Tensor t) {
        if (t.size() == 0) {
            return 0;
        }
        int blocks = (int) Math.min((t.size() + 255) / 256, 4096);
        dev.bind();
        dev.launch("sumSquares", "rh_sum_squares", blocks, 1, 256, partial, t, (long) t.size());
        double[] p = new double[blocks];
        dev.copyDtoH("sumSquares " + t, Pointer.to(p), partial.ptr(), 8L * blocks);
        double s = 0;
        for (double v : p) {
            s += v;
        }
        return s;
    }

    /**
     * Every tensor's per-block sums in one buffer, then one copy to the host; each tensor's blocks
     * are added in order and the tensors' sums in list order, so the result has the bits of the
     * single-tensor calls added in a loop.
     */
    @Override
    public double sumSquares(List<Tensor> ts) {
        int[] blocks = new int[ts.size()];
        int total = 0;
        for (int i = 0; i < blocks.length; i++) {
            long n = ts.get(i).size();
            blocks[i] = n == 0 ? 0 : (int) Math.min((n + 255) / 256, 4096);
            total += blocks[i];
        }
        if (batchPartial == null || batchPartial.size() < 2 * total) {
            batchPartial = (CudaTensor) allocate("sumSquares.batch", DType.FLOAT32, 2 * Math.max(total, 4096));
        }
        dev.bind();
        int at = 0;
        for (int i = 0; i < blocks.length; i++) {
            if (blocks[i] > 0) {
                dev.launch("sumSquares", "rh_sum_squares", blocks[i], 1, 256,
                        batchPartial.view("sumSquares.batch", 2L * at, 2 * blocks[i]), ts.get(i),
                        (long) ts.get(i).size());
                at += blocks[i];
            }
        }
        double[] p = new double[total];
        if (total > 0) {
            dev.copyDtoH("sumSquares of " + ts.size() + " tensors", Pointer.to(p), batchPartial.ptr(), 8L * total);
        }
        double s = 0;
        at = 0;
        for (int b : blocks) {
            double one = 0;
            for (int j = 0; j < b; j++) {
                one += p[at + j];
            }
            at += b;
            s += one;
        }
        return s;
    }

    /** A grid-stride kernel over n elements (nothing when n = 0). */
    void grid(String op, String fn, long n, Object... args) {
        if (n == 0) {
            return;
        }
        dev.bind();
        dev.launch(op, fn, CudaDevice.blocksFor(n), 1, 256, args);
    }

    // ---- dense layers -------------------------------------------------------------------------

    /** Row-major C[m,n] = alpha·op(A)·op(B) + beta·C with op(A) [m,k] and op(B) [k,n]. */
    private void gemm(String op, GemmKernel g, boolean ta, boolean tb, int m, int n, int k, float alpha, CudaTensor a,
                      int lda, CudaTensor b, int ldb, float beta, CudaTensor cc, int ldc) {
        if (m == 0 || n == 0) {
            return;
        }
        dev.bind();
        dev.launch(op, g.kernel, (n + g.tile - 1) / g.tile, (m + g.tile - 1) / g.tile, 256, ta ? 1 : 0, tb ? 1 : 0, m,
                n, k, alpha, a, lda, b, ldb, beta, cc, ldc);
    }

    /** {@code c = op(a)·op(b)} (row-major, op = transpose when asked) with one of the GEMM kernels. */
    public void matmul(Tensor c, Tensor a, Tensor b, boolean transA, boolean transB, GemmKernel kernel) {
        int m = transA ? a.dim(1) : a.dim(0);
        int k = transA ? a.dim(0) : a.dim(1);
        int n = transB ? b.dim(0) : b.dim(1);
        if (!((transB ? b.dim(1) : b.dim(0)) == k)) {
            throw new IllegalArgumentException("matmul: inner dimensions of " + a + " and " + b + " differ");
        }
        Check.shape("matmul", c, m, n);
        gemm("matmul " + kernel + " " + a + "·" + b, kernel, transA, transB, m, n, k, 1f, c(a), a.dim(1), c(b),
                b.dim(1), 0f, c(c), n);
    }

    /** Waits for every launched kernel (for timing). */
    public void synchronize() {
        dev.synchronize();
    }

    @Override
    public void linearForward(Tensor y, Tensor x, Tensor w, Tensor b, Precision p) {
        int n = x.dim(0);
        int in = w.dim(0);
        int out = w.dim(1);
        Check.linearForward(y, x, w, b);
        if (b != null) {
            grid("linearForward", "rh_bias_rows", (long) n * out, y, b, n, out);
        }
        gemm("linearForward " + x + "·" + w, GemmKernel.of(p), false, false, n, out, in, 1f, c(x), in, c(w), out,
                b == null ? 0f : 1f, c(y), out);
    }

    @Override
    public void linearTransposedForward(Tensor y, Tensor x, Tensor w) {
        int n = x.dim(0);
        int out = w.dim(0);
        int in = w.dim(1);
        Check.linearTransposed(y, x, w);
        gemm("linearTransposedForward " + x + "·" + w + "ᵀ", GemmKernel.of(Precision.FP32), false, true, n, out, in,
                1f, c(x), in, c(w), in, 0f, c(y), out);
    }

    @Override
    public void linearBackward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w, Precision p) {
        int n = x.dim(0);
        int in = w.dim(0);
        int out = w.dim(1);
        Check.linearBackward(dx, dw, dy, x, w);
        if (dx != null) {
            gemm("linearBackward dx " + dy + "·" + w + "ᵀ", GemmKernel.of(p), false, true, n, in, out, 1f, c(dy),
                    out, c(w), out, 0f, c(dx), in);
        }
        gemm("linearBackward dw " + x + "ᵀ·" + dy, GemmKernel.of(p), true, false, in, out, n, 1f, c(x), in, c(dy),
                out, 1f, c(dw), out);
        if (db != null && n > 0) {
            dev.bind();
            dev.launch("linearBackward db", "rh_column_sums", (out + 255) / 256, 1, 256, db, dy, n, out);
        }
    }

    @Override
    public void activationForward(Tensor h, Tensor a, Activation act) {
        int n = a.dim(0);
        int f = h.dim(1);
        Check.activation("activationForward", a, h, act);
        if (act == Activation.GELU) {
            grid("activationForward", "rh_gelu_forward", (long) n * f, h, a, (long) n * f);
        } else {
            grid("activationForward", "rh_swiglu_forward", (long) n * f, h, a, n, f);
        }
    }

    @Override
    public void activationBackward(Tensor da, Tensor dh, Tensor a, Activation act) {
        int n = a.dim(0);
        int f = dh.dim(1);
        Check.activation("activationBackward", a, dh, act);
        Check.activation("activationBackward", da, dh, act);
        if (act == Activation.GELU) {
            grid("activationBackward", "rh_gelu_backward", (long) n * f, da, dh, a, (long) n * f);
        } else {
            grid("activationBackward", "rh_swiglu_backward", (long) n * f, da, dh, a, n, f);
        }
    }

    /** The grouped FFN (CudaExperts): one launch per GEMM over every expert's rows. */
    @Override
    public void expertFfnForward(Tensor y, Tensor a, Tensor h, Tensor x, Tensor w1, Tensor b1, Tensor w2, Tensor b2,
                                 int[] offsets, Activation act, Precision p) {
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
        if (n == 0) {
            return;
        }
        dev.bind();
        dev.launch("normForward " + x, "rh_norm_forward", n, 1, 256, y, mean, rstd, x, gamma, beta, eps, d,
                beta == null ? 0 : 1);
    }

    @Override
    public void normBackward(Tensor dx, Tensor dgamma, Tensor dbeta, Tensor dy, Tensor x, Tensor mean, Tensor rstd,
                             Tensor gamma) {
        int n = x.dim(0);
        int d = x.dim(1);
        Check.shape("normBackward", dx, n, d);
        Check.shape("normBackward", dy, n, d);
        Check.shape("normBackward", dgamma, d);
        if (n == 0) {
            return;
        }
        dev.bind();
        dev.launch("normBackward dx " + x, "rh_norm_backward_dx", n, 1, 256, dx, dy, x, mean, rstd, gamma, d,
                dbeta == null ? 0 : 1);
        dev.launch("normBackward dgamma " + x, "rh_norm_backward_params", (d + 255) / 256, 1, 256, dgamma, dbeta, dy,
                x, mean, rstd, n, d);
    }

    // ---- dropout, jitter and element-wise (CudaElementwise) ------------------------------------

    @Override
    public void dropoutForward(Tensor y, Tensor x, float p, long seed, long stream, long firstElement) {
        elementwise.dropout("dropoutForward", y, x, p, seed, stream, firstElement);
    }

    @Override
    public void dropoutBackward(Tensor dx, Tensor dy, float p, long seed, long stream, long firstElement) {
        elementwise.dropout("dropoutBackward", dx, dy, p, seed, stream, firstElement);
    }

    @Override
    public void dropoutRowsForward(Tensor y, Tensor x, Tensor rates, long seed, long stream, long firstElement) {
        elementwise.dropoutRows("dropoutRowsForward", y, x, rates, seed, stream, firstElement);
    }

    @Override
    public void dropoutRowsBackward(Tensor dx, Tensor dy, Tensor rates, long seed, long stream, long firstElement) {
        elementwise.dropoutRows("dropoutRowsBackward", dx, dy, rates, seed, stream, firstElement);
    }

    @Override
    public void jitter(Tensor y, Tensor x, Tensor amplitude, long seed, long stream, long firstElement) {
        elementwise.jitter(y, x, amplitude, seed, stream, firstElement);
    }

    // ---- transformer (CudaTransformer) ---------------------------------------------------------

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

    // ---- images (CudaImage) --------------------------------------------------------------------

    @Override
    public void patchesForward(Tensor xp, Tensor x, int channels, int side, int patch) {
        image.patchesForward(xp, x, channels, side, patch);
    }

    @Override
    public void patchesBackward(Tensor dx, Tensor dxp, int channels, int side, int patch) {
        image.patchesBackward(dx, dxp, channels, side, patch);
    }

    @Override
    public void transposeGroups(Tensor y, Tensor x, int groups) {
        image.transposeGroups(y, x, groups);
    }

    @Override
    public void meanGroupsForward(Tensor y, Tensor x, int groups) {
        image.meanGroupsForward(y, x, groups);
    }

    @Override
    public void meanGroupsBackward(Tensor dx, Tensor dy, int groups) {
        image.meanGroupsBackward(dx, dy, groups);
    }

    // ---- element-wise (CudaElementwise) --------------------------------------------------------

    @Override
    public void multiply(Tensor y, Tensor a, Tensor b) {
        elementwise.multiply("multiply", y, a, b, 0);
    }

    @Override
    public void multiplyAdd(Tensor y, Tensor a, Tensor b) {
        elementwise.multiply("multiplyAdd", y, a, b, 1);
    }

    @Override
    public void sumRowProducts(Tensor acc, Tensor a, Tensor b) {
        elementwise.sumRowProducts(acc, a, b);
    }

    @Override
    public void scaleRows(Tensor t, Tensor s) {
        elementwise.scaleRows(t, s);
    }

    // ---- routing (CudaRouting) -----------------------------------------------------------------

    @Override
    public void gateForward(Tensor probs, Tensor lse, Tensor topIdx, Tensor gates, Tensor logits, GateMode mode) {
        routing.gateForward(probs, lse, topIdx, gates, logits, mode);
    }

    @Override
    public void gateBackward(Tensor dLogits, Tensor dGates, Tensor dProbs, Tensor dLse, Tensor probs, Tensor topIdx,
                             Tensor gates, GateMode mode) {
        routing.gateBackward(dLogits, dGates, dProbs, dLse, probs, topIdx, gates, mode);
    }

    @Override
    public void sigmoidTopKForward(Tensor probs, Tensor lse, Tensor topIdx, Tensor gates, Tensor logits, Tensor bias) {
        routing.sigmoidTopKForward(probs, lse, topIdx, gates, logits, bias);
    }

    @Override
    public void sigmoidTopKBackward(Tensor dLogits, Tensor dGates, Tensor dProbs, Tensor dLse, Tensor logits, Tensor lse,
                                    Tensor topIdx, Tensor gates) {
        routing.sigmoidTopKBackward(dLogits, dGates, dProbs, dLse, logits, lse, topIdx, gates);
    }

    @Override
    public void selectAtLeast(Tensor copies, Tensor topIdx, Tensor gates, float threshold) {
        routing.selectAtLeast(copies, topIdx, gates, threshold);
    }

    @Override
    public int dispatchPlan(Tensor rowToken, Tensor copyRow, int[] offsets, int[] selected, Tensor topIdx,
                            int numExperts, int capacity) {
        return routing.dispatchPlan(rowToken, copyRow, offsets, selected, topIdx, numExperts, capacity);
    }

    @Override
    public void permuteForward(Tensor xp, Tensor x, Tensor rowToken, int m) {
        routing.permuteForward(xp, x, rowToken, m);
    }

    @Override
    public void permuteBackward(Tensor dx, Tensor dxp, Tensor rowToken, int m) {
        routing.permuteBackward(dx, dxp, rowToken, m);
    }

    @Override
    public void unpermuteForward(Tensor y, Tensor yp, Tensor copyRow, Tensor gates) {
        routing.unpermuteForward(y, yp, copyRow, gates);
    }

    @Override
    public void unpermuteBackward(Tensor dyp, Tensor dGates, Tensor dy, Tensor yp, Tensor copyRow, Tensor gates) {
        routing.unpermuteBackward(dyp, dGates, dy, yp, copyRow, gates);
    }

    @Override
    public void routerStats(Tensor probs, float[] probSums) {
        routing.routerStats(probs, probSums);
    }

    @Override
    public double routerEntropy(Tensor probs) {
        return routing.routerEntropy(probs);
    }

    @Override
    public float[] routerLossForward(Tensor lse, int[] selected, float[] probSums, int totalTokens, int k, float alpha,
                                     float beta, float[] out) {
        return CpuRouting.routerLoss(lse, selected, probSums, totalTokens, k, alpha, beta, sumSquares(lse), out);
    }

    @Override
    public void routerLossBackward(Tensor dProbs, Tensor dLse, Tensor lse, int[] selected, int totalTokens, int k,
                                   float alpha, float beta, float dLoss) {
        routing.routerLossBackward(dProbs, dLse, lse, selected, totalTokens, k, alpha, beta, dLoss);
    }

    // ---- the noisy top-k router (CudaNoisyRouting) ----

    @Override
    public void noisyLogitsForward(Tensor noisy, Tensor clean, Tensor raw, long seed, long stream, long firstElement) {
        noisyRouting.noisyLogitsForward(noisy, clean, raw, seed, stream, firstElement);
    }

    @Override
    public void noisyLogitsBackward(Tensor dRaw, Tensor dNoisy, Tensor raw, long seed, long stream, long firstElement) {
        noisyRouting.noisyLogitsBackward(dRaw, dNoisy, raw, seed, stream, firstElement);
    }

    @Override
    public void noisyTopKLoadForward(Tensor load, Tensor clean, Tensor noisy, Tensor raw, int k) {
        noisyRouting.noisyTopKLoadForward(load, clean, noisy, raw, k);
    }

    @Override
    public void noisyTopKLoadBackward(Tensor dClean, Tensor dNoisy, Tensor dRaw, Tensor dLoad, Tensor clean,
                                      Tensor noisy, Tensor raw, int k) {
        noisyRouting.noisyTopKLoadBackward(dClean, dNoisy, dRaw, dLoad, clean, noisy, raw, k);
    }

    @Override
    public void expertGateSums(Tensor topIdx, Tensor gates, float[] sums) {
        noisyRouting.expertGateSums(topIdx, gates, sums);
    }

    @Override
    public void addExpertValues(Tensor dGates, Tensor topIdx, float[] perExpert) {
        noisyRouting.addExpertValues(dGates, topIdx, perExpert);
    }

    // ---- loss and optimizer -------------------------------------------------------------------

    @Override
    public void crossEntropyForward(Tensor losses, Tensor probs, Tensor logits, Tensor labels) {
        int n = logits.dim(0);
        int classes = logits.dim(1);
        Check.crossEntropyForward(losses, probs, logits, labels);
        if (n == 0) {
            return;
        }
        dev.bind();
        dev.memset32("crossEntropyForward", flag.ptr(), 0, 1);
        dev.launch("crossEntropyForward " + logits, "rh_cross_entropy_forward", (n + 255) / 256, 1, 256, losses, probs,
                logits, labels, n, classes, flag);
        int[] bad = new int[1];
        dev.copyDtoH("crossEntropyForward " + logits, Pointer.to(bad), flag.ptr(), 4);
        if (bad[0] != 0) {
            int[] y = new int[n];
            read(labels, y);
            int r = bad[0] - 1;
            throw new IllegalArgumentException("crossEntropyForward: label " + y[r] + " at row " + r
                    + " is outside [0, "
                    + classes + ")");
        }
    }

    @Override
    public void crossEntropyBackward(Tensor dLogits, Tensor probs, Tensor labels, float scale) {
        int n = probs.dim(0);
        int classes = probs.dim(1);
        Check.shape("crossEntropyBackward", dLogits, n, classes);
        grid("crossEntropyBackward", "rh_cross_entropy_backward", (long) n * classes, dLogits, probs, labels, n,
                classes, scale);
    }

    @Override
    public void adamWStep(Tensor w, Tensor g, Tensor m, Tensor v, float lr, float beta1, float beta2, float eps,
                          float weightDecay, int t) {
        Check.adamW(w, g, m, v, t);
        float c1 = (float) (1.0 / (1.0 - Math.pow(beta1, t)));
        float c2 = (float) (1.0 / (1.0 - Math.pow(beta2, t)));
        grid("adamWStep " + w.name(), "rh_adamw", w.size(), w, g, m, v, lr, beta1, beta2, eps, weightDecay, c1, c2,
                (long) w.size());
    }

    /** Device memory this backend holds, in bytes. */
    public long allocatedBytes() {
        return dev.allocatedBytes();
    }

    @Override
    public void close() {
        dev.close();
    }
}
