package io.roundhouse.worker.model;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Tensor;

/** LayerNorm or RMSNorm over the last dimension D. */
public final class NormLayer {
    /** ε under the square root: {@code x / sqrt(mean(x²) + ε)} (RMSNorm), {@code (x − μ) / sqrt(var + ε)}. */
    public static final float EPS = 1e-5f;
    private final Backend be;
    public final Param gamma;
    public final Param beta;
    private final Tensor y;     // [maxN, D]
    private final Tensor mean;  // [maxN]
    private final Tensor rstd;  // [maxN]
    private final Tensor dx;    // [maxN, D]
    private Tensor x;

    public NormLayer(Backend be, ParamStore ps, String name, NormKind kind, int d, int maxN) {
        this.be = be;
        this.gamma = ps.constant(name + ".gamma", 1f, false, d);
        this.beta = kind == NormKind.LAYERNORM ? ps.constant(name + ".beta", 0f, false, d) : null;
        this.y = be.allocate(name + ".y", DType.FLOAT32, maxN, d);
        this.mean = be.allocate(name + ".mean", DType.FLOAT32, maxN);
        this.rstd = be.allocate(name + ".rstd", DType.FLOAT32, maxN);
        this.dx = be.allocate(name + ".dx", DType.FLOAT32, maxN, d);
    }

    public Tensor forward(Tensor input) {
        x = input;
        int n = input.dim(0);
        Tensor out = y.rows(n);
        be.normForward(out, mean.rows(n), rstd.rows(n), input, gamma.value(), beta == null ? null : beta.value(), EPS);
        return out;
    }

    public Tensor backward(Tensor dy) {
        int n = x.dim(0);
        Tensor d = dx.rows(n);
        be.normBackward(d, gamma.grad(), beta == null ? null : beta.grad(), dy, x, mean.rows(n), rstd.rows(n), gamma.value());
        return d;
    }
}
