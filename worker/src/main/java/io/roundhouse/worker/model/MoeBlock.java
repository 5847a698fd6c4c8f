package io.roundhouse.worker.model;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Tensor;

/** {@code x + dropout(MoE(norm(x)))}: one block of the classifier. */
public final class MoeBlock {
    private final Backend be;
    private final ModelSpec spec;
    public final NormLayer norm;
    public final MoeLayer moe;
    private final Tensor dropped;  // [maxN, D]
    private final Tensor out;      // [maxN, D]
    private final Tensor dBranch;  // [maxN, D]
    private final Tensor dx;       // [maxN, D]
    private final RouterContext context = new RouterContext(false, 0, 0, 0, 0);  // set at each forward
    private float p;
    private Tensor rates;   // per-row dropout rates (a Self-Tuning Network's weight step), or null
    private long seed;
    private long stream;
    private long firstElement;

    public MoeBlock(Backend be, ParamStore ps, String name, ModelSpec spec, ExpertExchange exchange, int maxN) {
        this.be = be;
        this.spec = spec;
        this.norm = new NormLayer(be, ps, name + ".norm", spec.norm(), spec.dim(), maxN);
        this.moe = new MoeLayer(be, ps, name + ".moe", spec, exchange, maxN);
        this.dropped = be.allocate(name + ".dropped", DType.FLOAT32, maxN, spec.dim());
        this.out = be.allocate(name + ".out", DType.FLOAT32, maxN, spec.dim());
        this.dBranch = be.allocate(name + ".dBranch", DType.FLOAT32, maxN, spec.dim());
        this.dx = be.allocate(name + ".dx", DType.FLOAT32, maxN, spec.dim());
    }

    /**
     * @param dropoutRate block dropout rate (0 in evaluation)
     * @param capacity    expert capacity (0 = no limit)
     * @param firstRow    global index of x's first row in the batch (keys the dropout mask)
     */
    public Tensor forward(Tensor x, float dropoutRate, int capacity, long seed, long stream, long firstRow) {
        return forward(x, dropoutRate, null, capacity, true, 0, seed, stream, stream, firstRow);
    }

    /**
     * @param rates        a dropout rate per row instead of {@code dropoutRate} (null: one rate)
     * @param train        training (router jitter, router losses) or evaluation
     * @param step         the optimizer step (the router's schedules)
     * @param jitterStream the router jitter's stream
     */
    public Tensor forward(Tensor x, float dropoutRate, Tensor rates, int capacity, boolean train, long step, long seed,
                          long stream, long jitterStream, long firstRow) {
        int n = x.dim(0);
        this.p = dropoutRate;
        this.rates = rates;
        this.seed = seed;
        this.stream = stream;
        this.firstElement = firstRow * spec.dim();
        Tensor branch = moe.forward(norm.forward(x), capacity, context.set(train, step, seed, jitterStream, firstRow));
        Tensor o = out.rows(n);
        if (rates != null) {
            be.dropoutRowsForward(dropped.rows(n), branch, rates, seed, stream, firstElement);
            branch = dropped.rows(n);
        } else if (p > 0f) {
            be.dropoutForward(dropped.rows(n), branch, p, seed, stream, firstElement);
            branch = dropped.rows(n);
        }
        be.copy(o, x);
        be.axpy(o, 1f, branch);
        return o;
    }

    public Tensor backward(Tensor dOut) {
        int n = dOut.dim(0);
        Tensor dBr = dOut;
        if (rates != null) {
            be.dropoutRowsBackward(dBranch.rows(n), dOut, rates, seed, stream, firstElement);
            dBr = dBranch.rows(n);
        } else if (p > 0f) {
            be.dropoutBackward(dBranch.rows(n), dOut, p, seed, stream, firstElement);
            dBr = dBranch.rows(n);
        }
        Tensor dxBranch = norm.backward(moe.backward(dBr));
        Tensor d = dx.rows(n);
        be.copy(d, dOut);
        be.axpy(d, 1f, dxBranch);
        return d;
    }

    public ModelSpec spec() {
        return spec;
    }
}
