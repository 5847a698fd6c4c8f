package io.roundhouse.worker.model;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.GateMode;
import io.roundhouse.kernels.Tensor;

/**
 * The token-choice top-k routers: logits {@code h = x·W} (in training x may be jittered
 * multiplicatively first, Switch Transformer's router noise), then
 * <ul>
 *   <li>{@link RouterSpec.Kind#SOFTMAX}: {@code softmax(h)}, the K largest logits' experts, their
 *   gates by {@link GateMode};</li>
 *   <li>{@link RouterSpec.Kind#SIGMOID} (DeepSeek-V3): scores {@code σ(h)}, the K largest
 *   {@code σ(h_e) + b_e}, gates the chosen scores normalised to sum 1. The bias b (state, not
 *   trained by gradient) moves after every training step by {@code γ·sign(mean load − load_e)}
 *   over every worker's choices, so every worker holds the same b.</li>
 * </ul>
 * Auxiliary losses over every worker's tokens: load balancing {@code α·E·Σ_e f_e·P_e} (f the share
 * of copies, P the mean probability of expert e: the softmax, or for the sigmoid router the scores
 * normalised over every expert, DeepSeek-V3's complementary balance loss, here over the batch) and
 * the z-loss {@code β·mean(lse²)} of the logits. A Self-Tuning Network may perturb the jitter
 * amplitude and both coefficients token by token, and add a response to the logits.
 *
 * <p>Statistics summed over the workers: [0, E) choices per expert, [E, 2E) Σ probabilities,
 * [2E] tokens.
 */
final class TopKRouter implements Router {
    private final Backend be;
    private final int d;
    private final int e;
    private final int k;
    private final GateMode gateMode;
    private final float alpha;
    private final float beta;
    private final float routerJitter;
    private final RouterSpec.Kind kind;
    private final float biasRate;
    final Param router;   // [D, E]
    final Param bias;     // [E] the sigmoid router's selection bias (state), or null
    private final float[] hostBias;

    private final Tensor logits;    // [maxN, E]
    private final Tensor probs;     // [maxN, E]
    private final Tensor lse;       // [maxN]
    private final Tensor topIdx;    // [maxN, K] int
    private final Tensor gates;     // [maxN, K]
    private final Tensor dProbs;    // [maxN, E]
    private final Tensor dLse;      // [maxN]
    private final Tensor dLogits;   // [maxN, E]
    private final Tensor dx;        // [maxN, D]
    private final Tensor xj;        // [maxN, D] the router's jittered input
    private final Tensor constJ;    // [maxN] the fixed jitter amplitude, row by row
    private final Tensor constA;    // [maxN] the fixed load-balancing coefficient, row by row
    private final Tensor constB;    // [maxN] the fixed z-loss coefficient, row by row
    private final float[] probSums;       // [E] Σ probs over every worker's tokens
    private final int[] globalSelected;   // [E] choices over every worker's tokens
    private StnResponse response;
    private Perturbation perturbation;

    private int n;
    private boolean train;
    private Tensor routerIn;        // what the router saw (x, or x jittered)
    private Tensor jitterAmp;       // the last forward's jitter amplitudes, or null
    private long jitterSeed;
    private long jitterStream;
    private long jitterFirst;
    private int totalTokens;
    private float lastLoadBalance;
    private float lastZLoss;

    TopKRouter(Backend be, ParamStore ps, String name, ModelSpec spec, int maxN) {
        this.be = be;
        this.d = spec.dim();
        this.e = spec.experts();
        this.k = spec.topK();
        this.gateMode = spec.gate();
        this.alpha = (float) spec.loadBalance();
        this.beta = (float) spec.zLoss();
        this.routerJitter = (float) spec.routerJitter();
        this.kind = spec.router().kind();
        this.biasRate = (float) spec.router().biasRate();
        router = ps.normal(name + ".router.w", 0.1 / Math.sqrt(d), true, d, e);
        bias = kind == RouterSpec.Kind.SIGMOID ? ps.state(name + ".router.bias", e) : null;
        hostBias = new float[e];
        logits = be.allocate(name + ".logits", DType.FLOAT32, maxN, e);
        probs = be.allocate(name + ".probs", DType.FLOAT32, maxN, e);
        lse = be.allocate(name + ".lse", DType.FLOAT32, maxN);
        topIdx = be.allocate(name + ".topIdx", DType.INT32, maxN, k);
        gates = be.allocate(name + ".gates", DType.FLOAT32, maxN, k);
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
    }

    /** A Self-Tuning Network's perturbation, and the response it adds to the logits (or null). */
    void attach(StnResponse r, Perturbation p) {
        this.response = r;
        this.perturbation = p;
    }

    StnResponse response() {
        return response;
    }

    @Override
    public void forward(Tensor x, boolean train, long seed, long stream, long firstRow) {
        this.n = x.dim(0);
        this.train = train;
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
            jitterSeed = seed;
            jitterStream = stream;
            jitterFirst = firstRow * d;
            be.jitter(xj.rows(n), x, jitterAmp, seed, stream, jitterFirst);
            routerIn = xj.rows(n);
        }
        be.linearForward(logits.rows(n), routerIn, router.value(), null);
        if (response != null) {
            response.forward(logits.rows(n), routerIn, perturbation);
        }
        if (kind == RouterSpec.Kind.SIGMOID) {
            be.sigmoidTopKForward(probs.rows(n), lse.rows(n), topIdx.rows(n), gates.rows(n), logits.rows(n),
                    bias.value());
        } else {
            be.gateForward(probs.rows(n), lse.rows(n), topIdx.rows(n), gates.rows(n), logits.rows(n), gateMode);
        }
    }

    @Override
    public Tensor topIdx() {
        return topIdx.rows(n);
    }

    @Override
    public Tensor gates() {
        return gates.rows(n);
    }

    @Override
    public int statsSize() {
        return 2 * e + 1;
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
        float[] aux = be.routerLossForward(lse.rows(n), globalSelected, probSums, totalTokens, k,
                current(Hyper.LOAD_BALANCE, alpha), current(Hyper.Z_LOSS, beta));
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

    /** The softmax router's probabilities, or the sigmoid router's scores normalised over every expert. */
    @Override
    public double entropySum() {
        return be.routerEntropy(probs.rows(n));
    }

    @Override
    public Tensor backward(Tensor dGates) {
        // With statistics summed over workers each token's router-loss gradient is already its
        // share of the global loss: summing the workers' gradients gives the single-worker one.
        lossBackward();
        if (kind == RouterSpec.Kind.SIGMOID) {
            be.sigmoidTopKBackward(dLogits.rows(n), dGates, dProbs.rows(n), dLse.rows(n), logits.rows(n), lse.rows(n),
                    topIdx.rows(n), gates.rows(n));
        } else {
            be.gateBackward(dLogits.rows(n), dGates, dProbs.rows(n), dLse.rows(n), probs.rows(n), topIdx.rows(n),
                    gates.rows(n), gateMode);
        }
        be.linearBackward(dx.rows(n), router.grad(), null, dLogits.rows(n), routerIn, router.value());
        if (response != null) {
            response.backward(dx.rows(n), dLogits.rows(n), routerIn, perturbation);
        }
        if (jitterAmp != null) {
            be.jitter(dx.rows(n), dx.rows(n), jitterAmp, jitterSeed, jitterStream, jitterFirst);
        }
        return dx.rows(n);
    }

    /**
     * The sigmoid router's bias update from the last training forward's choices over every worker:
     * {@code b_e += γ·sign(mean − load_e)}. The same counts on every worker give the same bias.
     */
    @Override
    public void afterStep() {
        if (bias == null || biasRate == 0 || !train) {
            return;
        }
        long total = 0;
        for (int j = 0; j < e; j++) {
            total += globalSelected[j];
        }
        double mean = (double) total / e;
        be.read(bias.value(), hostBias);
        for (int j = 0; j < e; j++) {
            hostBias[j] += (float) (biasRate * Math.signum(mean - globalSelected[j]));
        }
        be.write(bias.value(), hostBias);
    }

    /**
     * The router losses' gradients (training only: evaluation's loss is the task loss), with a
     * coefficient per token when a Self-Tuning Network perturbs them.
     */
    private void lossBackward() {
        if (!train) {
            be.fill(dProbs.rows(n), 0f);
            be.fill(dLse.rows(n), 0f);
            return;
        }
        Tensor ca = perturbation == null ? null : perturbation.perExample(Hyper.LOAD_BALANCE);
        Tensor cb = perturbation == null ? null : perturbation.perExample(Hyper.Z_LOSS);
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
    private float current(Hyper h, float fixed) {
        return perturbation == null ? fixed : (float) perturbation.current(h, fixed);
    }
}
