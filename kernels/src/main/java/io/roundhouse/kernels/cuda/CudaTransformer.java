package io.roundhouse.kernels.cuda;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.Check;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Tensor;

/**
 * The transformer ops of the CUDA backend (kernels in {@code transformer.cu}), as
 * {@code cpu.CpuTransformer} is the CPU's: rotary position embedding, causal attention and the
 * attention output gate. Legend as in {@link Backend#attentionForward}: B sequences, Tq queries and
 * Tk keys each, H query heads, Hkv key/value heads, dh the head width.
 *
 * <p>Attention runs on tiles of queries by keys, one block of {@value #THREADS} threads per tile of
 * outputs; the backward is one kernel for dK and dV (a block per key tile and kv head) and one for
 * dQ (a block per query tile and head), each output summed by one block in a fixed order, so the
 * gradients have the same bits on every run. Dropout draws the CPU's Philox numbers.
 */
final class CudaTransformer {
    private static final int THREADS = 128;

    /** The kernels built for head widths up to {@code maxWidth}, and their tile (queries and keys per tile). */
    private enum Width {
        DH64(64, 32, "rh_attention_forward_dh64", "rh_attention_backward_kv_dh64", "rh_attention_backward_q_dh64"),
        DH128(128, 16, "rh_attention_forward_dh128", "rh_attention_backward_kv_dh128", "rh_attention_backward_q_dh128");

        final int maxWidth;
        final int tile;
        final String forward;
        final String backwardKv;
        final String backwardQ;

        Width(int maxWidth, int tile, String forward, String backwardKv, String backwardQ) {
            this.maxWidth = maxWidth;
            this.tile = tile;
            this.forward = forward;
            this.backwardKv = backwardKv;
            this.backwardQ = backwardQ;
        }

        static Width of(String op, int dh) {
            for (Width w : values()) {
                if (dh <= w.maxWidth) {
                    return w;
                }
            }
            throw new IllegalArgumentException(op + ": head width " + dh + " is over the CUDA backend's "
                    + DH128.maxWidth + " (transformer.cu's widest tiles): split the model width into more heads");
        }

        int tiles(int t) {
            return (t + tile - 1) / tile;
        }
    }

    private final CudaBackend be;
    private final CudaDevice dev;
    private CudaTensor rowDots;             // the backward's D [B·Tq, H], grown to the largest seen
    private float[] hostRates = new float[0];  // the rates, read back to be checked as the CPU checks them

    CudaTransformer(CudaBackend be, CudaDevice dev) {
        this.be = be;
        this.dev = dev;
    }

    void rope(Tensor y, Tensor x, int headDim, int period, int firstPos, float theta, boolean inverse) {
        Check.rope(y, x, headDim, period, firstPos);
        be.grid("rope", "rh_rope", x.size() / 2, y, x, x.dim(0), x.rowSize(), headDim, period, firstPos, theta,
                inverse ? 1 : 0);
    }

    void attentionForward(Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v, int batch, int heads, int kvHeads,
                          float scale, Tensor rates, long seed, long stream, long firstSequence) {
        String op = "attentionForward";
        Check.attention(op, out, lse, q, k, v, batch, heads, kvHeads, rates, firstSequence);
        int tq = q.dim(0) / batch;
        int tk = k.dim(0) / batch;
        int dh = q.rowSize() / heads;
        Width w = launchable(op, dh, batch, heads, rates);
        if (tq == 0) {
            return;
        }
        dev.bind();
        dev.launchGrid(op + " " + q, w.forward, w.tiles(tq), heads, batch, THREADS, out, lse, q, k, v, tq, tk, heads,
                kvHeads, dh, scale, rates, seed, stream, firstSequence);
    }

    void attentionBackward(Tensor dq, Tensor dk, Tensor dv, Tensor dOut, Tensor out, Tensor lse, Tensor q, Tensor k,
                           Tensor v, int batch, int heads, int kvHeads, float scale, Tensor rates, long seed,
                           long stream, long firstSequence) {
        String op = "attentionBackward";
        Check.attention(op, out, lse, q, k, v, batch, heads, kvHeads, rates, firstSequence);
        Check.sameSize(op, dOut, out);
        Check.sameSize(op, dq, q);
        Check.sameSize(op, dk, k);
        Check.sameSize(op, dv, v);
        int tq = q.dim(0) / batch;
        int tk = k.dim(0) / batch;
        int dh = q.rowSize() / heads;
        Width w = launchable(op, dh, batch, heads, rates);
        if (tk == 0) {
            return;  // then Tq = 0 too: nothing to assign
        }
        int rows = batch * tq;
        CudaTensor dd = rowDots(rows * heads);
        be.grid(op + " D", "rh_attention_row_dots", (long) rows * heads, dd, dOut, out, rows, heads, dh);
        dev.bind();
        // Without queries dk and dv are still assigned (zeros): the dK/dV blocks find no query tile.
        dev.launchGrid(op + " dK dV " + k, w.backwardKv, w.tiles(tk), kvHeads, batch, THREADS, dk, dv, dOut, lse, dd,
                q, k, v, tq, tk, heads, kvHeads, dh, scale, rates, seed, stream, firstSequence);
        if (tq > 0) {
            dev.launchGrid(op + " dQ " + q, w.backwardQ, w.tiles(tq), heads, batch, THREADS, dq, dOut, lse, dd, q, k,
                    v, tq, tk, heads, kvHeads, dh, scale, rates, seed, stream, firstSequence);
        }
    }

    /** The kernels for head width dh, once the grid fits CUDA's limits and every dropout rate is in [0, 1). */
    private Width launchable(String op, int dh, int batch, int heads, Tensor rates) {
        Width w = Width.of(op, dh);
        if (!(batch <= 65_535 && heads <= 65_535)) {
            throw new IllegalArgumentException(op + ": " + batch + " sequences of " + heads + " heads: the "
                    + "CUDA attention launches a grid of at most 65,535 sequences and 65,535 heads; split the batch");
        }
        if (rates != null) {
            if (hostRates.length < rates.size()) {
                hostRates = new float[rates.size()];
            }
            be.read(rates, hostRates);
            for (int b = 0; b < rates.size(); b++) {
                Check.rowRate(op, b, hostRates[b]);
            }
        }
        return w;
    }

    private CudaTensor rowDots(int n) {
        if (rowDots == null || rowDots.size() < n) {
            rowDots = (CudaTensor) be.allocate("attention.rowDots", DType.FLOAT32, Math.max(n, 1024));
        }
        return rowDots;
    }

    void sigmoidGateForward(Tensor y, Tensor x, Tensor g) {
        Check.sigmoidGate("sigmoidGateForward", y, x, g);
        be.grid("sigmoidGateForward", "rh_sigmoid_gate_forward", x.size(), y, x, g, (long) x.size());
    }

    void sigmoidGateBackward(Tensor dx, Tensor dg, Tensor dy, Tensor x, Tensor g) {
        Check.sigmoidGate("sigmoidGateBackward", dy, x, g);
        Check.sameSize("sigmoidGateBackward", dx, x);
        Check.sameSize("sigmoidGateBackward", dg, g);
        be.grid("sigmoidGateBackward", "rh_sigmoid_gate_backward", x.size(), dx, dg, dy, x, g, (long) x.size());
    }
}
