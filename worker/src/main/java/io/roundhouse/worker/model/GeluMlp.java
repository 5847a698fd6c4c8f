package io.roundhouse.worker.model;

import io.roundhouse.kernels.Activation;
import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Precision;
import io.roundhouse.kernels.Tensor;

/**
 * {@code y = GELU(x·W1 + b1)·W2 + b2}: the MLPs of a Mixer (token and channel mixing) and a
 * NiNformer's dense FFN.
 */
final class GeluMlp {
    private final Backend be;
    final LinearLayer fc1;    // [I, F]
    final LinearLayer fc2;    // [F, O]
    private final Tensor h;   // [maxN, F]
    private final Tensor da;  // [maxN, F]
    private Tensor a;

    /** @param outStd the second layer's initial standard deviation (scaled down for deep residual stacks) */
    GeluMlp(Backend be, ParamStore ps, String name, int in, int hidden, int out, double outStd, int maxN,
            Precision precision) {
        this.be = be;
        fc1 = new LinearLayer(be, ps, name + ".fc1", in, hidden, true, 1 / Math.sqrt(in), maxN, precision);
        fc2 = new LinearLayer(be, ps, name + ".fc2", hidden, out, true, outStd, maxN, precision);
        h = be.allocate(name + ".h", DType.FLOAT32, maxN, hidden);
        da = be.allocate(name + ".da", DType.FLOAT32, maxN, hidden);
    }

    Tensor forward(Tensor x) {
        int n = x.dim(0);
        a = fc1.forward(x);
        be.activationForward(h.rows(n), a, Activation.GELU);
        return fc2.forward(h.rows(n));
    }

    /** @return dx, valid until the next backward */
    Tensor backward(Tensor dy) {
        int n = dy.dim(0);
        Tensor dh = fc2.backward(dy, true);
        be.activationBackward(da.rows(n), dh, a, Activation.GELU);
        return fc1.backward(da.rows(n), true);
    }
}
