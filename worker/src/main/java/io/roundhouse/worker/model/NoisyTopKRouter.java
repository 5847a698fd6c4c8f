package io.roundhouse.worker.model;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.GateMode;
import io.roundhouse.kernels.Tensor;

/**
 * Noisy top-k gating (Shazeer et al. 2017). In training the logits get learned Gaussian noise,
 * {@code H = x·W_g + ε·softplus(x·W_noise)}, ε ~ N(0, 1) keyed by the seed, the stream and the
 * element's global index (W workers draw what one worker would); in evaluation {@code H = x·W_g}.
 * The K largest H choose the experts, their gates by {@link GateMode} ({@code topk_softmax} is the
 * paper's softmax over the kept logits). W_noise starts at zero (noise of scale softplus(0) = 0.69),
 * as in the paper.
 *
 * <p>Balance, over every worker's tokens (training only):
 * <ul>
 *   <li>importance loss {@code w_imp·CV(Importance)²}, Importance_e = Σ_tokens gate_e;</li>
 *   <li>load loss {@code w_load·CV(Load)²}, Load_e = Σ_tokens P(e stays in the top-k under a fresh
 *   draw of its own noise) = Φ((clean_e − threshold)/σ_e), the threshold the k-th largest noisy
 *   logit of the others (a smooth estimate of the copies e receives).</li>
 * </ul>
 * CV² = variance/mean² over the experts (population variance). The Switch load-balancing loss is
 * off; the z-loss applies to the noisy logits.
 *
 * <p>Statistics after the base ones: [base, base+E) importance, [base+E, base+2E) load.
 */
final class NoisyTopKRouter extends LinearRouter {
    private final GateMode gateMode;
    private final float wImportance;
    private final float wLoad;
    final Param noise;              // [D, E] W_noise
    private final Tensor raw;       // [maxN, E] x·W_noise
    private final Tensor noisy;     // [maxN, E] H
    private final Tensor load;      // [maxN, E] P(in the top-k)
    private final Tensor dNoisy;    // [maxN, E]
    private final Tensor dRaw;      // [maxN, E]
    private final Tensor dRawNoise; // [maxN, E]
    private final Tensor dLoad;     // [maxN, E]
    private final Tensor ones;      // [maxN, E]
    private final Tensor row;       // [E]
    private final Tensor dxNoise;   // [maxN, D]
    private final float[] importance;
    private final float[] loadSums;
    private final float[] dImportance;
    private final float[] dLoadSums;
    private long seed;
    private long stream;
    private long firstElement;
    private float lastBalance;

    NoisyTopKRouter(Backend be, ParamStore ps, String name, ModelSpec spec, int maxN) {
        super(be, ps, name, spec, maxN, spec.topK(), 0, false);
        this.gateMode = spec.gate();
        this.wImportance = (float) spec.router().importance();
        this.wLoad = (float) spec.router().load();
        noise = ps.constant(name + ".router.noise", 0f, true, d, e);
        raw = be.allocate(name + ".raw", DType.FLOAT32, maxN, e);
        noisy = be.allocate(name + ".noisy", DType.FLOAT32, maxN, e);
        load = be.allocate(name + ".load", DType.FLOAT32, maxN, e);
        dNoisy = be.allocate(name + ".dNoisy", DType.FLOAT32, maxN, e);
        dRaw = be.allocate(name + ".dRaw", DType.FLOAT32, maxN, e);
        dRawNoise = be.allocate(name + ".dRawNoise", DType.FLOAT32, maxN, e);
        dLoad = be.allocate(name + ".dLoad", DType.FLOAT32, maxN, e);
        ones = be.allocate(name + ".ones", DType.FLOAT32, maxN, e);
        be.fill(ones, 1f);
        row = be.allocate(name + ".row", DType.FLOAT32, e);
        dxNoise = be.allocate(name + ".dxNoise", DType.FLOAT32, maxN, d);
        importance = new float[e];
        loadSums = new float[e];
        dImportance = new float[e];
        dLoadSums = new float[e];
    }

    @Override
    protected void choose(RouterContext ctx) {
        Tensor h = noisy.rows(n);
        if (train) {
            seed = ctx.seed();
            stream = ctx.stream();
            firstElement = ctx.firstRow() * e;
            be.linearForward(raw.rows(n), routerInput(), noise.value(), null);
            be.noisyLogitsForward(h, logits.rows(n), raw.rows(n), seed, stream, firstElement);
        } else {
            be.copy(h, logits.rows(n));
        }
        be.gateForward(probs.rows(n), lse.rows(n), copies.rows(n), gates.rows(n), h, gateMode);
        if (train) {
            be.noisyTopKLoadForward(load.rows(n), logits.rows(n), h, raw.rows(n), slots);
        }
    }

    @Override
    public int statsSize() {
        return baseStats + 2 * e;
    }

    @Override
    public void localStats(float[] stats, int[] selected) {
        super.localStats(stats, selected);
        if (train) {
            be.expertGateSums(copies.rows(n), gates.rows(n), importance);
            be.routerStats(load.rows(n), loadSums);  // column sums
        } else {
            java.util.Arrays.fill(importance, 0f);
            java.util.Arrays.fill(loadSums, 0f);
        }
        System.arraycopy(importance, 0, stats, baseStats, e);
        System.arraycopy(loadSums, 0, stats, baseStats + e, e);
    }

    @Override
    public void globalStats(float[] stats) {
        super.globalStats(stats);
        System.arraycopy(stats, baseStats, importance, 0, e);
        System.arraycopy(stats, baseStats + e, loadSums, 0, e);
        lastBalance = train ? wImportance * cvSquared(importance, dImportance, wImportance)
                + wLoad * cvSquared(loadSums, dLoadSums, wLoad) : 0f;
    }

    /**
     * CV(v)² = var(v)/mean(v)² over the E entries, and its gradient times {@code scale} into
     * {@code grad}: {@code d/dv_e = 2/(E·mean²)·((v_e − mean) − var/mean)}. 0 (and no gradient)
     * when every entry is 0.
     */
    static float cvSquared(float[] v, float[] grad, float scale) {
        int e = v.length;
        double mean = 0;
        for (float x : v) {
            mean += x;
        }
        mean /= e;
        double var = 0;
        for (float x : v) {
            var += (x - mean) * (x - mean);
        }
        var /= e;
        if (mean <= 0) {
            java.util.Arrays.fill(grad, 0f);
            return 0f;
        }
        for (int j = 0; j < e; j++) {
            grad[j] = (float) (scale * 2 / (e * mean * mean) * ((v[j] - mean) - var / mean));
        }
        return (float) (var / (mean * mean));
    }

    @Override
    public float loadBalanceLoss() {
        return lastBalance;
    }

    @Override
    protected Tensor chooseBackward(Tensor dGates) {
        if (train) {
            be.addExpertValues(dGates, copies.rows(n), dImportance);
        }
        be.gateBackward(dNoisy.rows(n), dGates, dProbs.rows(n), dLse.rows(n), probs.rows(n), copies.rows(n),
                gates.rows(n), gateMode);
        if (!train) {
            return dNoisy.rows(n);
        }
        be.write(row, dLoadSums);
        be.multiply(dLoad.rows(n), ones.rows(n), row);
        be.fill(dLogits.rows(n), 0f);
        be.fill(dRaw.rows(n), 0f);
        be.noisyTopKLoadBackward(dLogits.rows(n), dNoisy.rows(n), dRaw.rows(n), dLoad.rows(n), logits.rows(n),
                noisy.rows(n), raw.rows(n), slots);
        // H = clean + ε·softplus(raw): the clean logits get dH, raw gets dH·ε·σ(raw).
        be.axpy(dLogits.rows(n), 1f, dNoisy.rows(n));
        be.noisyLogitsBackward(dRawNoise.rows(n), dNoisy.rows(n), raw.rows(n), seed, stream, firstElement);
        be.axpy(dRaw.rows(n), 1f, dRawNoise.rows(n));
        return dLogits.rows(n);
    }

    @Override
    protected void addInputGradient(Tensor dx) {
        if (!train) {
            return;
        }
        be.linearBackward(dxNoise.rows(n), noise.grad(), null, dRaw.rows(n), routerInput(), noise.value());
        be.axpy(dx, 1f, dxNoise.rows(n));
    }

}
