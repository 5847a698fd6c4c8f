package io.roundhouse.worker.model;

import io.roundhouse.kernels.Activation;
import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Tensor;

/**
 * A dense SwiGLU FFN, {@code y = (silu(x·W1) ⊙ x·W3)·W2}: the FFN of a language model's dense
 * blocks. W1 and W3 share one [D, 2F] weight, gate columns first ({@code w1} here; Mixtral's w1 is
 * its first F columns, w3 the rest).
 */
final class DenseFfn {
    private final Backend be;
    final LinearLayer w1;   // [D, 2F]
    final LinearLayer w2;   // [F, D]
    private final Tensor h;   // [maxN, F]
    private final Tensor da;  // [maxN, 2F]
    private Tensor a;

    DenseFfn(Backend be, ParamStore ps, String name, int d, int f, int blocks, int maxN) {
        this.be = be;
        w1 = new LinearLayer(be, ps, name + ".w1", d, 2 * f, false, 1 / Math.sqrt(d), maxN);
        w2 = new LinearLayer(be, ps, name + ".w2", f, d, false, 1 / Math.sqrt(f) / Math.sqrt(2.0 * blocks), maxN);
        h = be.allocate(name + ".h", DType.FLOAT32, maxN, f);
        da = be.allocate(name + ".da", DType.FLOAT32, maxN, 2 * f);
    }

    Tensor forward(Tensor x) {
        int n = x.dim(0);
        a = w1.forward(x);
        be.activationForward(h.rows(n), a, Activation.SWIGLU);
        return w2.forward(h.rows(n));
    }

    Tensor backward(Tensor dy) {
        int n = dy.dim(0);
        Tensor dh = w2.backward(dy, true);
        be.activationBackward(da.rows(n), dh, a, Activation.SWIGLU);
        return w1.backward(da.rows(n), true);
    }
}
