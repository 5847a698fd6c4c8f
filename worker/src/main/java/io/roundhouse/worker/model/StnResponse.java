package io.roundhouse.worker.model;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Tensor;

/**
 * The centred (Delta-STN) best-response of a linear layer {@code y = x·W + b}: adds
 * {@code s ⊙ (x·W_r) + t ⊙ b_r} with {@code s = Δ·U_s}, {@code t = Δ·U_t}, Δ the example's
 * perturbation of the hyperparameters. {@code U = 0} at start, so the layer is the plain one; the
 * response weights are drawn from their own generator, so adding them changes no other
 * parameter's initial value.
 *
 * <p>Backward accumulates {@code dW_r, db_r, dU_s, dU_t}, adds the response's input gradient to the
 * layer's and the hypergradient terms {@code dL/dΔ} to the perturbation's.
 *
 * <p>A table lookup's response ({@link #table}: a language model's token embedding) is the same with
 * the one-hot token as x: {@code x·W_r} is row {@code id} of a response table.
 */
public final class StnResponse {
    private final Backend be;
    public final Param wr;   // [I, O]
    public final Param br;   // [O]
    public final Param us;   // [h, O]
    public final Param ut;   // [h, O]
    private final Tensor z;      // [maxN, O]  x·W_r
    private final Tensor s;      // [maxN, O]
    private final Tensor t;      // [maxN, O]
    private final Tensor tmp;    // [maxN, O]
    private final Tensor dxr;    // [maxN, I]
    private final Tensor dPart;  // [maxN, h]
    private final Tensor dTable; // [I, O] a table's scatter-added gradient, or null for a linear layer

    public StnResponse(Backend be, ParamStore ps, String name, int in, int out, int hypers, double initStd, int maxN) {
        this(be, ps, name, in, out, hypers, initStd, maxN, false);
    }

    /** The response of a lookup in a table of {@code rows} rows of width {@code out}; its x is the ids [n]. */
    public static StnResponse table(Backend be, ParamStore ps, String name, int rows, int out, int hypers,
                                    double initStd, int maxN) {
        return new StnResponse(be, ps, name, rows, out, hypers, initStd, maxN, true);
    }

    private StnResponse(Backend be, ParamStore ps, String name, int in, int out, int hypers, double initStd, int maxN,
                        boolean table) {
        this.be = be;
        this.wr = ps.normalAside(name + ".stn.wr", initStd, true, in, out);
        this.br = ps.normalAside(name + ".stn.br", 0.1, false, out);
        this.us = ps.constant(name + ".stn.us", 0f, false, hypers, out);
        this.ut = ps.constant(name + ".stn.ut", 0f, false, hypers, out);
        this.z = be.allocate(name + ".stn.z", DType.FLOAT32, maxN, out);
        this.s = be.allocate(name + ".stn.s", DType.FLOAT32, maxN, out);
        this.t = be.allocate(name + ".stn.t", DType.FLOAT32, maxN, out);
        this.tmp = be.allocate(name + ".stn.tmp", DType.FLOAT32, maxN, out);
        this.dxr = table ? null : be.allocate(name + ".stn.dx", DType.FLOAT32, maxN, in);
        this.dTable = table ? be.allocate(name + ".stn.dTable", DType.FLOAT32, in, out) : null;
        this.dPart = be.allocate(name + ".stn.dDelta", DType.FLOAT32, maxN, hypers);
    }

    /** {@code y += s ⊙ (x·W_r) + t ⊙ b_r}; nothing when the perturbation is off. */
    public void forward(Tensor y, Tensor x, Perturbation p) {
        if (!p.active()) {
            return;
        }
        int n = x.dim(0);
        if (dTable != null) {
            be.permuteForward(z.rows(n), wr.value(), x, n);
        } else {
            be.linearForward(z.rows(n), x, wr.value(), null);
        }
        be.linearForward(s.rows(n), p.delta(), us.value(), null);
        be.linearForward(t.rows(n), p.delta(), ut.value(), null);
        be.multiplyAdd(y, s.rows(n), z.rows(n));
        be.multiplyAdd(y, t.rows(n), br.value());
    }

    /**
     * Backward of the last forward for {@code dy}: parameter gradients accumulate, the input
     * gradient is added to {@code dx} (when not null), {@code dL/dΔ} to the perturbation's.
     */
    public void backward(Tensor dx, Tensor dy, Tensor x, Perturbation p) {
        if (!p.active()) {
            return;
        }
        int n = dy.dim(0);
        Tensor dt = tmp.rows(n);
        // t-path: db_r += Σ dy⊙t; dt = dy⊙b_r → dU_t, dΔ
        be.sumRowProducts(br.grad(), dy, t.rows(n));
        be.multiply(dt, dy, br.value());
        be.linearBackward(dPart.rows(n), ut.grad(), null, dt, p.delta(), ut.value());
        be.axpy(p.dDelta(), 1f, dPart.rows(n));
        // s-path: ds = dy⊙z → dU_s, dΔ (t's scratch is free again)
        Tensor ds = tmp.rows(n);
        be.multiply(ds, dy, z.rows(n));
        be.linearBackward(dPart.rows(n), us.grad(), null, ds, p.delta(), us.value());
        be.axpy(p.dDelta(), 1f, dPart.rows(n));
        // the response weights: dz = dy⊙s (z's scratch is free now) → dW_r, dx
        Tensor dz = z.rows(n);
        be.multiply(dz, dy, s.rows(n));
        if (dTable != null) {
            be.permuteBackward(dTable, dz, x, n);
            be.axpy(wr.grad(), 1f, dTable);
            return;
        }
        be.linearBackward(dx == null ? null : dxr.rows(n), wr.grad(), null, dz, x, wr.value());
        if (dx != null) {
            be.axpy(dx, 1f, dxr.rows(n));
        }
    }
}
