package io.roundhouse.worker.model;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Tensor;

/**
 * What every router here shares: logits {@code h = x·W (+ b)} from a linear map of the token (in
 * training x may be jittered multiplicatively first, Switch Transformer's router noise; a
 * Self-Tuning Network may add a response to h), a distribution over the experts computed from h
 * (saved as {@link #probs}, with {@link #lse} the logsumexp of what was normalised), and the
 * auxiliary losses over every worker's tokens that read them: Switch load balancing
 * {@code α·E·Σ_e f_e·P_e} (f the share of copies, P the mean probability) and the z-loss
 * {@code β·mean(lse²)}. A subclass chooses the copies from h ({@link #choose}) and carries the
 * gates' gradient back to h ({@link #chooseBackward}).
 *
 * <p>A Self-Tuning Network may perturb the jitter amplitude and both coefficients token by token.
 *
 * <p>Statistics summed over the workers: [0, E) choices per expert, [E, 2E) Σ probabilities,
 * [2E] tokens; a subclass may append its own after {@link #BASE_STATS}.
 */
abstract class LinearRouter implements Router {
    protected final Backend be;
    protected final int d;
    protected final int e;
    private final float alpha;
    private final float beta;
    private final float routerJitter;
    final Param router;   // [D, E]
    private final Param biasIn;   // [E] added to x·W, or null

    protected final int slots;        // S
    protected final Tensor copies;    // [maxN, S] int: the expert of each copy, −1 for an empty slot
    protected final Tensor gates;     // [maxN, S]
    protected final Tensor logits;    // [maxN, E]
    protected final Tensor probs;     // [maxN, E]
    protected final Tensor lse;       // [maxN]
    protected final Tensor dProbs;    // [maxN, E]
    protected final Tensor dLse;      // [maxN]
    protected final Tensor dLogits;   // [maxN, E]
    private final Tensor dx;          // [maxN, D]
    private final Tensor xj;          // [maxN, D] the router's jittered input
    private final Tensor constJ;      // [maxN] the fixed jitter amplitude, row by row
    private final Tensor constA;      // [maxN] the fixed load-balancing coefficient, row by row
    private final Tensor constB;      // [maxN] the fixed z-loss coefficient, row by row
    private final float[] probSums;             // [E] Σ probs over every worker's tokens
    protected final int[] globalSelected;       // [E] choices over every worker's tokens
    private StnResponse response;
    protected Perturbation perturbation;

    protected int n;
    protected boolean train;
    private Tensor routerIn;        // what the router saw (x, or x jittered)
    private Tensor jitterAmp;       // the last forward's jitter amplitudes, or null
    private long jitterSeed;
    private long jitterStream;
    private long jitterFirst;
    protected int totalTokens;
    private float lastLoadBalance;
    private float lastZLoss;
    private final float[] aux = new float[2];  // the router losses: {load balance, z-loss share}

    /** Statistics the base class writes: a subclass's own start here. */
    protected final int baseStats;

    /**
     * @param slots  copy slots per token S
     * @param alpha  the Switch load-balancing coefficient (0: the router balances otherwise)
     * @param biasIn whether a learnt per-expert bias is added to x·W
     */
    LinearRouter(Backend be, ParamStore ps, String name, ModelSpec spec, int maxN, int slots, double alpha,
                 boolean biasIn) {
        this.be = be;
        this.d = spec.dim();
        this.e = spec.experts();
        this.alpha = (float) alpha;
        this.beta = (float) spec.zLoss();
        this.routerJitter = (float) spec.routerJitter();
        router = ps.normal(name + ".router.w", 0.1 / Math.sqrt(d), true, d, e);
        this.biasIn = biasIn ? ps.constant(name + ".router.b", 0f, false, e) : null;
        this.slots = slots;
        copies = be.allocate(name + ".copies", DType.INT32, maxN, slots);
        gates = be.allocate(name + ".gates", DType.FLOAT32, maxN, slots);
        logits = be.allocate(name + ".logits", DType.FLOAT32, maxN, e);
        probs = be.allocate(name + ".probs", DType.FLOAT32, maxN, e);
        lse = be.allocate(name + ".lse", DType.FLOAT32, maxN);
        dProbs = be.allocate(name + ".dProbs", DType.FLOAT32, maxN, e);
        dLse = be.allocate(name + ".dLse", DType.FLOAT32, maxN);
        dLogits = be.allocate(name + ".dLogits", DType.FLOAT32, maxN, e);
        dx = be.allocate(name + ".dxRouter", DType.FLOAT32, maxN, d);
        xj = be.allocate(name + ".xj", DType.FLOAT32, maxN, d);
        constJ = be.allocate(name + ".constJ", DType.FLOAT32, maxN);
        constA = be.allocate(name + ".constA", DType.FLOAT32, maxN);
        constB = be.allocate(name + ".constB", DType.FLOAT32, maxN);
        probSums = new float[e];
        globalSelected = new int[e];
        baseStats = 2 * e + 1;
    }

    /** The router {@code spec} names, its parameters named under {@code name}. */
    static LinearRouter create(Backend be, ParamStore ps, String name, ModelSpec spec, ExpertExchange exchange,
                               int maxN) {
        return switch (spec.router().kind()) {
            case SOFTMAX, SIGMOID -> new TopKRouter(be, ps, name, spec, maxN);
            case DENSE_TO_SPARSE -> new DenseToSparseRouter(be, ps, name, spec, maxN);
            case EXPERT_CHOICE -> new ExpertChoiceRouter(be, ps, name, spec, exchange, maxN);
            case NOISY -> new NoisyTopKRouter(be, ps, name, spec, maxN);
        };
    }

    /** A Self-Tuning Network's perturbation, and the response it adds to the logits (or null). */
    void attach(StnResponse r, Perturbation p) {
        this.response = r;
        this.perturbation = p;
    }

    StnResponse response() {
        return response;
    }

    /** From logits[n, E]: probs, lse, the copy table and its gates. */
    protected abstract void choose(RouterContext ctx);

    /**
     * dL/dlogits[n, E] from the gates' gradient dGates[n, S] and the auxiliary losses' dProbs and
     * dLse (see {@link #lossBackward}).
     */
    protected abstract Tensor chooseBackward(Tensor dGates);

    /** Copies per token the Switch loss's f counts against (f_e = choices / (T·k)): the slots unless overridden. */
    protected int copiesPerToken() {
        return slots;
    }

    @Override
    public final int slots() {
        return slots;
    }

    @Override
    public final Tensor copies() {
        return copies.rows(n);
    }

    @Override
    public final Tensor gates() {
        return gates.rows(n);
    }

    /** What the router's linear maps read: x, or x jittered. */
    protected Tensor routerInput() {
        return routerIn;
    }

    /** Adds to dx[n, D] the gradient of any other linear map of {@link #routerInput} (after {@link #chooseBackward}). */
    protected void addInputGradient(Tensor dx) {
    }

    @Override
    public final void forward(Tensor x, RouterContext ctx) {
        this.n = x.dim(0);
        this.train = ctx.train();
        jitterAmp = null;
        if (train) {
            jitterAmp = perturbation == null ? null : perturbation.perExample(Hyper.ROUTER_JITTER);
            if (jitterAmp == null && current(Hyper.ROUTER_JITTER, routerJitter) > 0) {
                jitterAmp = constJ.rows(n);
                be.fill(jitterAmp, current(Hyper.ROUTER_JITTER, routerJitter));
            }
        }
        routerIn = x;
        if (jitterAmp != null) {
            jitterSeed = ctx.seed();
            jitterStream = ctx.stream();
            jitterFirst = ctx.firstRow() * d;
            be.jitter(xj.rows(n), x, jitterAmp, jitterSeed, jitterStream, jitterFirst);
            routerIn = xj.rows(n);
        }
        be.linearForward(logits.rows(n), routerIn, router.value(), biasIn == null ? null : biasIn.value());
        if (response != null) {
            response.forward(logits.rows(n), routerIn, perturbation);
        }
        choose(ctx);
    }

    @Override
    public int statsSize() {
        return baseStats;
    }

    @Override
    public void localStats(float[] stats, int[] selected) {
        be.routerStats(probs.rows(n), probSums);
        for (int j = 0; j < e; j++) {
            stats[j] = selected[j];
            stats[e + j] = probSums[j];
        }
        stats[2 * e] = n;
    }

    @Override
    public void globalStats(float[] stats) {
        for (int j = 0; j < e; j++) {
            globalSelected[j] = Math.round(stats[j]);
            probSums[j] = stats[e + j];
        }
        totalTokens = Math.round(stats[2 * e]);
        be.routerLossForward(lse.rows(n), globalSelected, probSums, totalTokens, copiesPerToken(),
                current(Hyper.LOAD_BALANCE, alpha), current(Hyper.Z_LOSS, beta), aux);
        lastLoadBalance = aux[0];
        lastZLoss = aux[1];
    }

    @Override
    public float loadBalanceLoss() {
        return lastLoadBalance;
    }

    @Override
    public float zLoss() {
        return lastZLoss;
    }

    @Override
    public double entropySum() {
        return be.routerEntropy(probs.rows(n));
    }

    @Override
    public final Tensor backward(Tensor dGates) {
        // With statistics summed over workers each token's router-loss gradient is already its
        // share of the global loss: summing the workers' gradients gives the single-worker one.
        lossBackward();
        Tensor dl = chooseBackward(dGates);
        be.linearBackward(dx.rows(n), router.grad(), biasIn == null ? null : biasIn.grad(), dl, routerIn,
                router.value());
        addInputGradient(dx.rows(n));
        if (response != null) {
            response.backward(dx.rows(n), dl, routerIn, perturbation);
        }
        if (jitterAmp != null) {
            be.jitter(dx.rows(n), dx.rows(n), jitterAmp, jitterSeed, jitterStream, jitterFirst);
        }
        return dx.rows(n);
    }

    /**
     * The base losses' gradients into dProbs and dLse (training only: evaluation's loss is the task
     * loss), with a coefficient per token when a Self-Tuning Network perturbs them.
     */
    private void lossBackward() {
        if (!train) {
            be.fill(dProbs.rows(n), 0f);
            be.fill(dLse.rows(n), 0f);
            return;
        }
        Tensor ca = perturbation == null ? null : perturbation.perExample(Hyper.LOAD_BALANCE);
        Tensor cb = perturbation == null ? null : perturbation.perExample(Hyper.Z_LOSS);
        int k = copiesPerToken();
        if (ca == null && cb == null) {
            be.routerLossBackward(dProbs.rows(n), dLse.rows(n), lse.rows(n), globalSelected, totalTokens, k,
                    current(Hyper.LOAD_BALANCE, alpha), current(Hyper.Z_LOSS, beta), 1f);
            return;
        }
        be.routerLossBackward(dProbs.rows(n), dLse.rows(n), lse.rows(n), globalSelected, totalTokens, k, 1f, 1f, 1f);
        if (ca == null) {
            ca = constA.rows(n);
            be.fill(ca, current(Hyper.LOAD_BALANCE, alpha));
        }
        if (cb == null) {
            cb = constB.rows(n);
            be.fill(cb, current(Hyper.Z_LOSS, beta));
        }
        be.scaleRows(dProbs.rows(n), ca);
        be.scaleRows(dLse.rows(n), cb);
    }

    /** λ of {@code h} when a Self-Tuning Network tunes it, else the fixed value. */
    protected float current(Hyper h, float fixed) {
        return perturbation == null ? fixed : (float) perturbation.current(h, fixed);
    }
}
