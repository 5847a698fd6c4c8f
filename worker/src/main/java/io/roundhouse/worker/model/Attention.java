package io.roundhouse.worker.model;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Tensor;

/**
 * Multi-head causal self-attention with rotary position embeddings and, optionally, grouped-query
 * heads and the sigmoid output gate: {@code q, k, v = x·Wq, x·Wk, x·Wv; q, k = rope(q, k);
 * o = softmax(q·kᵀ/√dh, causal)·v; o = o ⊙ σ(x·Wg) (gated); y = o·Wo}. Rows are tokens, B sequences
 * of T each. No biases (as Llama and Mixtral).
 */
final class Attention {
    private final Backend be;
    private final LmSpec spec;
    final LinearLayer wq;
    final LinearLayer wk;
    final LinearLayer wv;
    final LinearLayer wg;   // null without the gate
    final LinearLayer wo;
    private final String name;
    private final Tensor o;      // [maxN, H·dh] attention output
    private final Tensor lse;    // [maxN, H]
    private final Tensor og;     // [maxN, H·dh] gated output
    private final Tensor dO;     // [maxN, H·dh]
    private final Tensor dG;     // [maxN, H·dh]
    private final Tensor dQ;     // [maxN, H·dh]
    private final Tensor dK;     // [maxN, Hkv·dh]
    private final Tensor dV;     // [maxN, Hkv·dh]
    private final Tensor dx;     // [maxN, D]
    private Tensor q;
    private Tensor k;
    private Tensor v;
    private Tensor g;
    private int batch;
    private Tensor rates;
    private long seed;
    private long stream;
    private long firstSequence;

    Attention(Backend be, ParamStore ps, String name, LmSpec spec, int maxN) {
        this.be = be;
        this.name = name;
        this.spec = spec;
        int d = spec.moe().dim();
        int qw = spec.heads() * spec.headDim();
        int kw = spec.kvHeads() * spec.headDim();
        double std = 1 / Math.sqrt(d);
        double outStd = 1 / Math.sqrt(qw) / Math.sqrt(2.0 * spec.moe().blocks());
        wq = new LinearLayer(be, ps, name + ".wq", d, qw, false, std, maxN);
        wk = new LinearLayer(be, ps, name + ".wk", d, kw, false, std, maxN);
        wv = new LinearLayer(be, ps, name + ".wv", d, kw, false, std, maxN);
        wg = spec.attentionGate() ? new LinearLayer(be, ps, name + ".wg", d, qw, false, std, maxN) : null;
        wo = new LinearLayer(be, ps, name + ".wo", qw, d, false, outStd, maxN);
        o = be.allocate(name + ".o", DType.FLOAT32, maxN, qw);
        lse = be.allocate(name + ".lse", DType.FLOAT32, maxN, spec.heads());
        og = be.allocate(name + ".og", DType.FLOAT32, maxN, qw);
        dO = be.allocate(name + ".dO", DType.FLOAT32, maxN, qw);
        dG = be.allocate(name + ".dG", DType.FLOAT32, maxN, qw);
        dQ = be.allocate(name + ".dQ", DType.FLOAT32, maxN, qw);
        dK = be.allocate(name + ".dK", DType.FLOAT32, maxN, kw);
        dV = be.allocate(name + ".dV", DType.FLOAT32, maxN, kw);
        dx = be.allocate(name + ".dx", DType.FLOAT32, maxN, d);
    }

    /**
     * @param x             normalised input [B·T, D]
     * @param batch         sequences B
     * @param rates         attention-dropout rate per token row, or null
     * @param firstSequence global index of the first sequence (keys the dropout masks)
     */
    Tensor forward(Tensor x, int batch, Tensor rates, long seed, long stream, long firstSequence) {
        int n = x.dim(0);
        this.batch = batch;
        this.rates = rates;
        this.seed = seed;
        this.stream = stream;
        this.firstSequence = firstSequence;
        int t = n / batch;
        q = wq.forward(x);
        k = wk.forward(x);
        v = wv.forward(x);
        be.rope(q, q, spec.headDim(), t, 0, (float) spec.ropeTheta(), false);
        be.rope(k, k, spec.headDim(), t, 0, (float) spec.ropeTheta(), false);
        Tensor out = o.rows(n);
        be.attentionForward(out, lse.rows(n), q, k, v, batch, spec.heads(), spec.kvHeads(), scale(), rates, seed,
                stream, firstSequence);
        if (wg != null) {
            g = wg.forward(x);
            be.sigmoidGateForward(og.rows(n), out, g);
            out = og.rows(n);
        }
        return wo.forward(out);
    }

    /** @return dL/dx [B·T, D] */
    Tensor backward(Tensor dy) {
        int n = dy.dim(0);
        int t = n / batch;
        Tensor dOut = wo.backward(dy, true);
        Tensor dxOut = dx.rows(n);
        if (wg != null) {
            be.sigmoidGateBackward(dO.rows(n), dG.rows(n), dOut, o.rows(n), g);
            dOut = dO.rows(n);
            be.copy(dxOut, wg.backward(dG.rows(n), true));
        } else {
            be.fill(dxOut, 0f);
        }
        be.attentionBackward(dQ.rows(n), dK.rows(n), dV.rows(n), dOut, o.rows(n), lse.rows(n), q, k, v, batch,
                spec.heads(), spec.kvHeads(), scale(), rates, seed, stream, firstSequence);
        be.rope(dQ.rows(n), dQ.rows(n), spec.headDim(), t, 0, (float) spec.ropeTheta(), true);
        be.rope(dK.rows(n), dK.rows(n), spec.headDim(), t, 0, (float) spec.ropeTheta(), true);
        be.axpy(dxOut, 1f, wq.backward(dQ.rows(n), true));
        be.axpy(dxOut, 1f, wk.backward(dK.rows(n), true));
        be.axpy(dxOut, 1f, wv.backward(dV.rows(n), true));
        return dxOut;
    }

    /**
     * One token at position {@code pos} of a single sequence against a key/value cache: writes its
     * key and value into row {@code pos} of the caches and attends rows [0, pos].
     *
     * @param x      normalised input [1, D]
     * @param cacheK [maxLen, Hkv·dh]
     * @param cacheV [maxLen, Hkv·dh]
     */
    Tensor decode(Tensor x, int pos, Tensor cacheK, Tensor cacheV) {
        Tensor q1 = wq.forward(x);
        Tensor k1 = wk.forward(x);
        Tensor v1 = wv.forward(x);
        be.rope(q1, q1, spec.headDim(), 1, pos, (float) spec.ropeTheta(), false);
        be.rope(cacheK.rows(pos, 1), k1, spec.headDim(), 1, pos, (float) spec.ropeTheta(), false);
        be.copy(cacheV.rows(pos, 1), v1);
        Tensor out = o.rows(1);
        be.attentionForward(out, lse.rows(1), q1, cacheK.rows(pos + 1), cacheV.rows(pos + 1), 1, spec.heads(),
                spec.kvHeads(), scale(), null, 0, 0, 0);
        if (wg != null) {
            be.sigmoidGateForward(og.rows(1), out, wg.forward(x));
            out = og.rows(1);
        }
        return wo.forward(out);
    }

    String name() {
        return name;
    }

    private float scale() {
        return (float) (1 / Math.sqrt(spec.headDim()));
    }
}
