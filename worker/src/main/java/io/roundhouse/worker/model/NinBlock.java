package io.roundhouse.worker.model;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Tensor;

/**
 * One NiNformer block over the patches of each image: the gating unit
 * {@code h = x + drop(gate(u) ⊙ mixer(u))} with {@code u = norm1(x)}, gate a linear layer D → D
 * and mixer a {@link MixerBlock}; then the FFN sub-block {@code y = h + drop(ffn(norm2(h)))}, the
 * FFN an MoE layer (any router) or a dense GELU MLP. Residual dropout at the spec's
 * {@code dropoutBlock}; the two branches draw from streams {@code streams} and {@code streams + 1},
 * the router's jitter from {@code streams + 2}.
 */
final class NinBlock {
    private final Backend be;
    private final int d;
    private final int p;
    private final PhaseTimers timers;
    final NormLayer norm1;
    final LinearLayer gate;
    final MixerBlock mixer;
    final NormLayer norm2;
    final MoeLayer moe;     // null in a dense block
    final GeluMlp ffn;      // null in an MoE block
    private final Tensor gated;    // [maxN, D] gate ⊙ mixer
    private final Tensor h;        // [maxN, D]
    private final Tensor out;      // [maxN, D]
    private final Tensor dropped;  // [maxN, D]
    private final Tensor dBranch;  // [maxN, D]
    private final Tensor dh;       // [maxN, D]
    private final Tensor dGate;    // [maxN, D]
    private final Tensor dMix;     // [maxN, D]
    private final Tensor du;       // [maxN, D]
    private final Tensor dx;       // [maxN, D]
    private final RouterContext context = new RouterContext(false, 0, 0, 0, 0);  // set at each forward
    private Tensor g;
    private Tensor m;
    private float rate;
    private Tensor rates;  // per-row residual dropout (a Self-Tuning Network's), or null
    private long seed;
    private long stream;
    private long firstElement;

    /**
     * @param exchange the MoE layer's expert exchange, or null for a dense FFN
     * @param maxImages images one forward takes at most
     */
    NinBlock(Backend be, ParamStore ps, String name, NinformerSpec spec, ExpertExchange exchange, int maxImages,
             PhaseTimers timers) {
        ModelSpec s = spec.moe();
        this.be = be;
        this.d = s.dim();
        this.p = spec.patches();
        this.timers = timers;
        int maxN = maxImages * p;
        norm1 = new NormLayer(be, ps, name + ".norm1", s.norm(), d, maxN);
        gate = new LinearLayer(be, ps, name + ".gate", d, d, true, 1 / Math.sqrt(d), maxN, s.precision());
        mixer = new MixerBlock(be, ps, name + ".mixer", spec, maxImages);
        norm2 = new NormLayer(be, ps, name + ".norm2", s.norm(), d, maxN);
        if (exchange != null) {
            moe = new MoeLayer(be, ps, name + ".moe", s, exchange, maxN);
            moe.setTimers(timers);
            ffn = null;
        } else {
            moe = null;
            ffn = new GeluMlp(be, ps, name + ".ffn", d, spec.denseHidden(), d,
                    1 / Math.sqrt(spec.denseHidden()) / Math.sqrt(2.0 * s.blocks()), maxN, s.precision());
        }
        gated = be.allocate(name + ".gated", DType.FLOAT32, maxN, d);
        h = be.allocate(name + ".h", DType.FLOAT32, maxN, d);
        out = be.allocate(name + ".out", DType.FLOAT32, maxN, d);
        dropped = be.allocate(name + ".dropped", DType.FLOAT32, maxN, d);
        dBranch = be.allocate(name + ".dBranch", DType.FLOAT32, maxN, d);
        dh = be.allocate(name + ".dh", DType.FLOAT32, maxN, d);
        dGate = be.allocate(name + ".dGate", DType.FLOAT32, maxN, d);
        dMix = be.allocate(name + ".dMix", DType.FLOAT32, maxN, d);
        du = be.allocate(name + ".du", DType.FLOAT32, maxN, d);
        dx = be.allocate(name + ".dx", DType.FLOAT32, maxN, d);
    }

    /**
     * @param x        [G·P, D], image g's patches at rows [g·P, (g+1)·P)
     * @param rate     residual dropout (0 in evaluation)
     * @param streams  the block's first of 3 Philox streams
     * @param firstRow global index of x's first row (first image · P): keys masks and router noise
     */
    Tensor forward(Tensor x, float rate, int capacity, boolean train, long step, long seed, long streams,
                   long firstRow) {
        return forward(x, rate, null, capacity, train, step, seed, streams, firstRow);
    }

    /** @param rates a residual-dropout rate per row instead of {@code rate} (a Self-Tuning Network's), or null */
    Tensor forward(Tensor x, float rate, Tensor rates, int capacity, boolean train, long step, long seed, long streams,
                   long firstRow) {
        int n = x.dim(0);
        this.rate = rate;
        this.rates = rates;
        this.seed = seed;
        this.stream = streams;
        this.firstElement = firstRow * d;
        long t0 = System.nanoTime();
        Tensor u = norm1.forward(x);
        g = gate.forward(u);
        m = mixer.forward(u);
        Tensor gm = gated.rows(n);
        be.multiply(gm, g, m);
        Tensor hh = h.rows(n);
        be.copy(hh, x);
        be.axpy(hh, 1f, dropout(gm, 0));
        timers.add(PhaseTimers.Phase.MIXER, t0, System.nanoTime());
        Tensor f = moe != null ? moe.forward(norm2.forward(hh), capacity,
                context.set(train, step, seed, streams + 2, firstRow)) : ffn.forward(norm2.forward(hh));
        Tensor o = out.rows(n);
        be.copy(o, hh);
        be.axpy(o, 1f, dropout(f, 1));
        return o;
    }

    private Tensor dropout(Tensor branch, int which) {
        Tensor t = dropped.rows(branch.dim(0));
        if (rates != null) {
            be.dropoutRowsForward(t, branch, rates, seed, stream + which, firstElement);
            return t;
        }
        if (rate <= 0f) {
            return branch;
        }
        be.dropoutForward(t, branch, rate, seed, stream + which, firstElement);
        return t;
    }

    private Tensor undrop(Tensor dy, int which) {
        Tensor t = dBranch.rows(dy.dim(0));
        if (rates != null) {
            be.dropoutRowsBackward(t, dy, rates, seed, stream + which, firstElement);
            return t;
        }
        if (rate <= 0f) {
            return dy;
        }
        be.dropoutBackward(t, dy, rate, seed, stream + which, firstElement);
        return t;
    }

    Tensor backward(Tensor dOut) {
        int n = dOut.dim(0);
        Tensor dF = undrop(dOut, 1);
        Tensor dNorm2 = moe != null ? moe.backward(dF) : ffn.backward(dF);
        Tensor dH = dh.rows(n);
        be.copy(dH, dOut);
        be.axpy(dH, 1f, norm2.backward(dNorm2));
        long t0 = System.nanoTime();
        Tensor dGm = undrop(dH, 0);
        Tensor dG = dGate.rows(n);
        be.multiply(dG, dGm, m);
        Tensor dM = dMix.rows(n);
        be.multiply(dM, dGm, g);
        Tensor dU = du.rows(n);
        be.copy(dU, gate.backward(dG, true));
        be.axpy(dU, 1f, mixer.backward(dM));
        Tensor d = dx.rows(n);
        be.copy(d, dH);
        be.axpy(d, 1f, norm1.backward(dU));
        timers.add(PhaseTimers.Phase.MIXER, t0, System.nanoTime());
        return d;
    }
}
