package io.roundhouse.worker.model;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Tensor;

/**
 * {@code h = x + drop(attention(norm1(x))); y = h + drop(ffn(norm2(h)))}, the FFN an MoE layer or
 * a dense SwiGLU FFN. Residual dropout at one rate (the spec's {@code dropoutBlock}), or at a rate
 * per token row (a Self-Tuning Network's weight step).
 */
final class TransformerBlock {
    private final Backend be;
    final NormLayer norm1;
    final Attention attention;
    final NormLayer norm2;
    final MoeLayer moe;        // null in a dense block
    final DenseFfn ffn;        // null in an MoE block
    private final Tensor h;        // [maxN, D]
    private final Tensor out;      // [maxN, D]
    private final Tensor dropped;  // [maxN, D]
    private final Tensor dBranch;  // [maxN, D]
    private final Tensor dh;       // [maxN, D]
    private final Tensor dx;       // [maxN, D]
    private final RouterContext context = new RouterContext(false, 0, 0, 0, 0);  // set at each forward
    private final int d;
    private final PhaseTimers timers;
    private float p;
    private Tensor rates;      // residual-dropout rate per row, or null: p for every row
    private long seed;
    private long stream;
    private long firstElement;

    /** @param timers where the attention sub-block and the MoE layer book their time */
    TransformerBlock(Backend be, ParamStore ps, String name, LmSpec spec, ExpertExchange exchange, int maxN,
                     PhaseTimers timers) {
        this.be = be;
        this.timers = timers;
        ModelSpec m = spec.moe();
        this.d = m.dim();
        norm1 = new NormLayer(be, ps, name + ".norm1", m.norm(), d, maxN);
        attention = new Attention(be, ps, name + ".attention", spec, maxN);
        norm2 = new NormLayer(be, ps, name + ".norm2", m.norm(), d, maxN);
        if (exchange != null) {
            moe = new MoeLayer(be, ps, name + ".moe", m, exchange, maxN, false);
            moe.setTimers(timers);
            ffn = null;
        } else {
            moe = null;
            ffn = new DenseFfn(be, ps, name + ".ffn", d, spec.denseHidden(), m.blocks(), maxN);
        }
        h = be.allocate(name + ".h", DType.FLOAT32, maxN, d);
        out = be.allocate(name + ".out", DType.FLOAT32, maxN, d);
        dropped = be.allocate(name + ".dropped", DType.FLOAT32, maxN, d);
        dBranch = be.allocate(name + ".dBranch", DType.FLOAT32, maxN, d);
        dh = be.allocate(name + ".dh", DType.FLOAT32, maxN, d);
        dx = be.allocate(name + ".dx", DType.FLOAT32, maxN, d);
    }

    /**
     * @param residualRates  a residual-dropout rate per row instead of {@code residualDropout}, or null
     * @param attentionRates the attention-dropout rate per row, or null (none)
     * @param streams        the block's first of 4 Philox streams: attention probabilities, the two
     *                       residual branches, the router's jitter
     * @param firstSequence  global index of the first sequence
     */
    Tensor forward(Tensor x, int batch, boolean train, float residualDropout, Tensor residualRates,
                   Tensor attentionRates, int capacity, long step, long seed, long streams, long firstSequence) {
        int n = x.dim(0);
        long firstRow = firstSequence * (n / batch);
        this.p = residualDropout;
        this.rates = residualRates;
        this.seed = seed;
        this.stream = streams + 1;
        this.firstElement = firstRow * d;
        long t0 = System.nanoTime();
        Tensor a = attention.forward(norm1.forward(x), batch, attentionRates, seed, streams, firstSequence);
        timers.add(PhaseTimers.Phase.ATTENTION, t0, System.nanoTime());
        Tensor hh = h.rows(n);
        be.copy(hh, x);
        be.axpy(hh, 1f, dropout(a, 0));
        Tensor f = moe != null ? moe.forward(norm2.forward(hh), capacity,
                context.set(train, step, seed, streams + 3, firstRow)) : ffn.forward(norm2.forward(hh));
        Tensor o = out.rows(n);
        be.copy(o, hh);
        be.axpy(o, 1f, dropout(f, 1));
        return o;
    }

    private Tensor dropout(Tensor branch, int which) {
        Tensor t = dropped.rows(branch.dim(0));
        if (rates != null) {
            be.dropoutRowsForward(t, branch, rates, seed, stream + which, firstElement);
        } else if (p > 0f) {
            be.dropoutForward(t, branch, p, seed, stream + which, firstElement);
        } else {
            return branch;
        }
        return t;
    }

    Tensor backward(Tensor dOut) {
        int n = dOut.dim(0);
        Tensor dF = undrop(dOut, 1);
        Tensor dNorm2 = moe != null ? moe.backward(dF) : ffn.backward(dF);
        Tensor dH = dh.rows(n);
        be.copy(dH, dOut);
        be.axpy(dH, 1f, norm2.backward(dNorm2));
        Tensor dA = undrop(dH, 0);
        Tensor d = dx.rows(n);
        be.copy(d, dH);
        long t0 = System.nanoTime();
        Tensor dNorm1 = norm1.backward(attention.backward(dA));
        timers.add(PhaseTimers.Phase.ATTENTION, t0, System.nanoTime());
        be.axpy(d, 1f, dNorm1);
        return d;
    }

    private Tensor undrop(Tensor dy, int which) {
        Tensor t = dBranch.rows(dy.dim(0));
        if (rates != null) {
            be.dropoutRowsBackward(t, dy, rates, seed, stream + which, firstElement);
        } else if (p > 0f) {
            be.dropoutBackward(t, dy, p, seed, stream + which, firstElement);
        } else {
            return dy;
        }
        return t;
    }

    /** One token of generation at position {@code pos} (evaluation mode, caches per block). */
    Tensor decode(Tensor x, int pos, Tensor cacheK, Tensor cacheV) {
        this.p = 0f;
        this.rates = null;
        Tensor a = attention.decode(norm1.forward(x), pos, cacheK, cacheV);
        Tensor hh = h.rows(1);
        be.copy(hh, x);
        be.axpy(hh, 1f, a);
        Tensor f = moe != null ? moe.forward(norm2.forward(hh), 0, RouterContext.EVALUATION)
                : ffn.forward(norm2.forward(hh));
        Tensor o = out.rows(1);
        be.copy(o, hh);
        be.axpy(o, 1f, f);
        return o;
    }
}
