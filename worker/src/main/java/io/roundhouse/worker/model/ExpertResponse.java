package io.roundhouse.worker.model;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Tensor;

/**
 * The centred (Delta-STN) best-response of a layer's experts: for a copy routed to hosted expert e,
 * {@code y += s ⊙ (x·R_e) + t ⊙ b_e} with {@code [s; t] = Δ·[U_s,e | U_t,e]}, Δ the perturbation
 * of the copy's token. The response path runs from the expert's input to its output (a linear
 * response of the whole expert, so the FFN's own forward and backward stay one op each); U = 0 at
 * start. Each copy's Δ travels to its expert's host with {@link ExpertExchange#dispatchSide} and
 * its dΔ comes back with {@link ExpertExchange#combineSide}: two more exchange rounds per layer.
 *
 * <p>The parameters are expert parameters ({@link Param#expert()}): sliced by placement,
 * drawn from the second generator (the same values on any number of workers), summed over replicas
 * and checkpointed by global expert like the FFN's.
 */
final class ExpertResponse {
    private final Backend be;
    private final int d;
    private final int h;
    private final int local;
    final Param r;    // [El, D, D]
    final Param b;    // [El, D]
    final Param us;   // [El, h, D]
    final Param ut;   // [El, h, D]
    private final Tensor deltaP;    // [maxRowsOut, h] each copy's Δ, in dispatch layout
    private final Tensor deltaTok;  // [maxN, h] dΔ summed per token
    private final Tensor z;         // [rowsIn, D] x·R
    private final Tensor s;         // [rowsIn, D]
    private final Tensor t;         // [rowsIn, D]
    private final Tensor tmp;       // [rowsIn, D]
    private final Tensor dx;        // [rowsIn, D]
    private final Tensor dDeltaR;   // [rowsIn, h]
    private final Tensor part;      // [rowsIn, h]
    private Tensor deltaR;          // the last forward's Δ at the experts

    ExpertResponse(Backend be, ParamStore ps, String name, int first, int local, int experts, int d, int h,
                   int maxN, int maxRowsOut, int rowsIn) {
        this.be = be;
        this.d = d;
        this.h = h;
        this.local = local;
        this.r = ps.normalSliceAside(name + ".experts.stn.r", 1 / Math.sqrt(d), true, first, local, experts, d, d);
        this.b = ps.normalSliceAside(name + ".experts.stn.b", 0.1, false, first, local, experts, d);
        this.us = ps.expertConstant(name + ".experts.stn.us", 0f, false, local, h, d);
        this.ut = ps.expertConstant(name + ".experts.stn.ut", 0f, false, local, h, d);
        this.deltaP = be.allocate(name + ".stn.deltaP", DType.FLOAT32, maxRowsOut, h);
        this.deltaTok = be.allocate(name + ".stn.deltaTok", DType.FLOAT32, maxN, h);
        this.z = be.allocate(name + ".stn.z", DType.FLOAT32, rowsIn, d);
        this.s = be.allocate(name + ".stn.s", DType.FLOAT32, rowsIn, d);
        this.t = be.allocate(name + ".stn.t", DType.FLOAT32, rowsIn, d);
        this.tmp = be.allocate(name + ".stn.tmp", DType.FLOAT32, rowsIn, d);
        this.dx = be.allocate(name + ".stn.dx", DType.FLOAT32, rowsIn, d);
        this.dDeltaR = be.allocate(name + ".stn.dDeltaR", DType.FLOAT32, rowsIn, h);
        this.part = be.allocate(name + ".stn.part", DType.FLOAT32, rowsIn, h);
    }

    /**
     * After the expert FFN: sends each copy's Δ to its expert (a collective: every worker calls it
     * while the perturbation is on) and adds the responses into {@code yr}.
     *
     * @param rowToken the token of each dispatched copy (the capacity plan's), first {@code m} used
     */
    void forward(Tensor yr, Tensor xr, int[] localOffsets, Tensor rowToken, int m, ExpertExchange exchange,
                 Perturbation p) {
        if (!p.active()) {
            return;
        }
        be.permuteForward(deltaP.rows(m), p.delta(), rowToken, m);
        deltaR = exchange.dispatchSide(deltaP.rows(m));
        for (int e = 0; e < local; e++) {
            int lo = localOffsets[e];
            int n = localOffsets[e + 1] - lo;
            if (n == 0) {
                continue;
            }
            Tensor de = deltaR.rows(lo, n);
            be.linearForward(z.rows(lo, n), xr.rows(lo, n), slice(r.value(), e, d, d), null);
            be.linearForward(s.rows(lo, n), de, slice(us.value(), e, h, d), null);
            be.linearForward(t.rows(lo, n), de, slice(ut.value(), e, h, d), null);
            be.multiplyAdd(yr.rows(lo, n), s.rows(lo, n), z.rows(lo, n));
            be.multiplyAdd(yr.rows(lo, n), t.rows(lo, n), slice(b.value(), e, d));
        }
    }

    /**
     * After the expert FFN's backward: accumulates the response's parameter gradients, adds its
     * input gradient into {@code dxr}, sends each copy's dΔ back (a collective) and adds it to its
     * token's row of the perturbation's dΔ.
     */
    void backward(Tensor dxr, Tensor dyr, Tensor xr, int[] localOffsets, Tensor rowToken, int m,
                  ExpertExchange exchange, Perturbation p) {
        if (!p.active()) {
            return;
        }
        for (int e = 0; e < local; e++) {
            int lo = localOffsets[e];
            int n = localOffsets[e + 1] - lo;
            if (n == 0) {
                continue;
            }
            Tensor dy = dyr.rows(lo, n);
            Tensor de = deltaR.rows(lo, n);
            Tensor scratch = tmp.rows(lo, n);
            // t-path: db += Σ dy⊙t; dt = dy⊙b → dU_t, dΔ (assigned)
            be.sumRowProducts(slice(b.grad(), e, d), dy, t.rows(lo, n));
            be.multiply(scratch, dy, slice(b.value(), e, d));
            be.linearBackward(dDeltaR.rows(lo, n), slice(ut.grad(), e, h, d), null, scratch, de,
                    slice(ut.value(), e, h, d));
            // s-path: ds = dy⊙z → dU_s, dΔ (added)
            be.multiply(scratch, dy, z.rows(lo, n));
            be.linearBackward(part.rows(lo, n), slice(us.grad(), e, h, d), null, scratch, de,
                    slice(us.value(), e, h, d));
            be.axpy(dDeltaR.rows(lo, n), 1f, part.rows(lo, n));
            // R: dz = dy⊙s → dR, dx (added to the FFN's)
            be.multiply(scratch, dy, s.rows(lo, n));
            be.linearBackward(dx.rows(lo, n), slice(r.grad(), e, d, d), null, scratch, xr.rows(lo, n),
                    slice(r.value(), e, d, d));
            be.axpy(dxr.rows(lo, n), 1f, dx.rows(lo, n));
        }
        int mLocal = localOffsets[local];
        Tensor back = exchange.combineSide(dDeltaR.rows(mLocal));
        int tokens = p.dDelta().dim(0);
        be.permuteBackward(deltaTok.rows(tokens), back, rowToken, m);
        be.axpy(p.dDelta(), 1f, deltaTok.rows(tokens));
    }

    /** Expert e's slice of a [El, ...] tensor, as a tensor of {@code shape}. */
    private static Tensor slice(Tensor all, int e, int... shape) {
        return all.rows(e, 1).view(shape);
    }
}
