package io.roundhouse.worker.model;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Precision;
import io.roundhouse.kernels.Tensor;

/**
 * y[N,O] = x[N,I]·w[I,O] + b[O], its GEMMs at a {@link Precision}; keeps a reference to its input
 * for backward. An STN response added to it runs in fp32.
 */
public final class LinearLayer {
    private final Backend be;
    public final Param w;
    public final Param b;
    private final Tensor y;   // [maxN, O]
    private final Tensor dx;  // [maxN, I]
    private final Precision precision;
    private Tensor x;         // the last input, [n, I]
    private StnResponse response;
    private Perturbation perturbation;

    public LinearLayer(Backend be, ParamStore ps, String name, int in, int out, boolean bias, double initStd, int maxN) {
        this(be, ps, name, in, out, bias, initStd, maxN, Precision.FP32);
    }

    public LinearLayer(Backend be, ParamStore ps, String name, int in, int out, boolean bias, double initStd, int maxN,
                       Precision precision) {
        this.be = be;
        this.precision = precision;
        this.w = ps.normal(name + ".w", initStd, true, in, out);
        this.b = bias ? ps.constant(name + ".b", 0f, false, out) : null;
        this.y = be.allocate(name + ".y", DType.FLOAT32, maxN, out);
        this.dx = be.allocate(name + ".dx", DType.FLOAT32, maxN, in);
    }

    /** Makes this an STN layer: {@code response} adds its term whenever {@code p} is on. */
    public void attach(StnResponse r, Perturbation p) {
        this.response = r;
        this.perturbation = p;
    }

    public StnResponse response() {
        return response;
    }

    /** @return y[n,O], valid until the next forward */
    public Tensor forward(Tensor input) {
        x = input;
        Tensor out = y.rows(input.dim(0));
        be.linearForward(out, input, w.value(), b == null ? null : b.value(), precision);
        if (response != null) {
            response.forward(out, input, perturbation);
        }
        return out;
    }

    /**
     * @param needDx whether to compute the input gradient
     * @return dx[n,I] (or null), valid until the next backward
     */
    public Tensor backward(Tensor dy, boolean needDx) {
        Tensor d = needDx ? dx.rows(x.dim(0)) : null;
        be.linearBackward(d, w.grad(), b == null ? null : b.grad(), dy, x, w.value(), precision);
        if (response != null) {
            response.backward(d, dy, x, perturbation);
        }
        return d;
    }
}
