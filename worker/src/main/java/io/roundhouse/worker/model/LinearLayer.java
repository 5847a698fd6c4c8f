package io.roundhouse.worker.model;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Precision;
import io.roundhouse.kernels.Tensor;

/**
 * y[N,O] = x[N,I]·w[I,O] + b[O], its GEMMs at a {@link Precision}; keeps a reference to its input
 * for backward. An STN response added to it runs in fp32.
 *
 * <p>A {@link #tied} layer has no weight of its own: y = x·tableᵀ with a table[O,I] another layer
 * owns (a language model's token embedding), whose gradient it adds to.
 */
public final class LinearLayer {
    private final Backend be;
    public final Param w;
    public final Param b;
    private final Tensor y;   // [maxN, O]
    private final Tensor dx;  // [maxN, I]
    private final Precision precision;
    private final boolean transposed;  // w is a table[O,I] (tied)
    private Tensor x;         // the last input, [n, I]
    private StnResponse response;
    private Perturbation perturbation;

    public LinearLayer(Backend be, ParamStore ps, String name, int in, int out, boolean bias, double initStd, int maxN) {
        this(be, ps, name, in, out, bias, initStd, maxN, Precision.FP32);
    }

    public LinearLayer(Backend be, ParamStore ps, String name, int in, int out, boolean bias, double initStd, int maxN,
                       Precision precision) {
        this(be, name, ps.normal(name + ".w", initStd, true, in, out), bias ? ps.constant(name + ".b", 0f, false, out)
                : null, in, out, maxN, precision, false);
    }

    private LinearLayer(Backend be, String name, Param w, Param b, int in, int out, int maxN, Precision precision,
                        boolean transposed) {
        this.be = be;
        this.precision = precision;
        this.transposed = transposed;
        this.w = w;
        this.b = b;
        this.y = be.allocate(name + ".y", DType.FLOAT32, maxN, out);
        this.dx = be.allocate(name + ".dx", DType.FLOAT32, maxN, in);
    }

    /** y[N,O] = x[N,I]·table[O,I]ᵀ in fp32, no bias; backward adds to the table's gradient. */
    public static LinearLayer tied(Backend be, String name, Param table, int maxN) {
        return new LinearLayer(be, name, table, null, table.value().dim(1), table.value().dim(0), maxN, Precision.FP32,
                true);
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
        if (transposed) {
            be.linearTransposedForward(out, input, w.value());
        } else {
            be.linearForward(out, input, w.value(), b == null ? null : b.value(), precision);
        }
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
        if (transposed) {
            d = dx.rows(x.dim(0));  // computed either way (one GEMM of the pair)
            be.linearTransposedBackward(d, w.grad(), dy, x, w.value());
        } else {
            be.linearBackward(d, w.grad(), b == null ? null : b.grad(), dy, x, w.value(), precision);
        }
        if (response != null) {
            response.backward(d, dy, x, perturbation);
        }
        return d;
    }
}
