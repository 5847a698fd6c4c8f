package io.roundhouse.worker.model;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.GateMode;
import io.roundhouse.kernels.Tensor;

/**
 * Dense-to-sparse gating with a temperature (PAPERS.md): gates {@code g = softmax(s)} over every
 * expert with
 * <ul>
 *   <li>the temperature gate: {@code s = (xW + b)/τ};</li>
 *   <li>the activation dense-to-sparse gate: {@code s = σ(xW + b)/τ}, or with the bias outside,
 *   {@code s = σ(xW)/τ + b} ({@link RouterSpec.BiasPlacement});</li>
 * </ul>
 * τ annealed from a high start (every gate near 1/E: dense) to a low end (one gate near 1: sparse)
 * by the step ({@link RouterSpec.Temperature}). A token goes to each of its K largest-gate experts
 * whose gate is at least the threshold, so the experts used per token fall as τ does (K = E to
 * start fully dense). Gates are not renormalised: the mass of the experts left out is dropped, as
 * a dense softmax mixture truncated. Losses: Switch load balancing on g and the z-loss on s.
 */
final class DenseToSparseRouter extends LinearRouter {
    private final RouterSpec spec;
    private final Param biasOut;    // [E] or null
    private final Tensor ones;      // [maxN, E]
    private final Tensor scores;    // [maxN, E] s
    private final Tensor act;       // [maxN, E] σ(h), or null without the activation
    private final Tensor dAct;      // [maxN, E]
    private final Tensor scratch;   // [maxN, E]
    private final Tensor topIdx;    // [maxN, K] int
    private float tau;

    DenseToSparseRouter(Backend be, ParamStore ps, String name, ModelSpec spec, int maxN) {
        super(be, ps, name, spec, maxN, spec.topK(), spec.loadBalance(),
                spec.router().bias() == RouterSpec.BiasPlacement.INSIDE);
        this.spec = spec.router();
        biasOut = this.spec.bias() == RouterSpec.BiasPlacement.OUTSIDE ? ps.constant(name + ".router.b", 0f, false, e)
                : null;
        ones = be.allocate(name + ".ones", DType.FLOAT32, maxN, e);
        be.fill(ones, 1f);
        scores = be.allocate(name + ".scores", DType.FLOAT32, maxN, e);
        act = this.spec.activation() ? be.allocate(name + ".act", DType.FLOAT32, maxN, e) : null;
        dAct = be.allocate(name + ".dAct", DType.FLOAT32, maxN, e);
        scratch = be.allocate(name + ".dScratch", DType.FLOAT32, maxN, e);
        topIdx = be.allocate(name + ".topIdx", DType.INT32, maxN, slots);
    }

    /** The temperature of the last forward. */
    float temperature() {
        return tau;
    }

    @Override
    protected void choose(RouterContext ctx) {
        tau = (float) spec.temperature().at(ctx.step());
        Tensor s = scores.rows(n);
        if (act != null) {
            be.sigmoidGateForward(act.rows(n), ones.rows(n), logits.rows(n));  // σ(h) = 1 ⊙ σ(h)
            be.copy(s, act.rows(n));
        } else {
            be.copy(s, logits.rows(n));
        }
        be.scale(s, 1f / tau);
        if (biasOut != null) {
            be.multiplyAdd(s, ones.rows(n), biasOut.value());
        }
        be.gateForward(probs.rows(n), lse.rows(n), topIdx.rows(n), gates.rows(n), s, GateMode.SOFTMAX_TOPK);
        be.selectAtLeast(copies.rows(n), topIdx.rows(n), gates.rows(n), (float) spec.threshold());
    }

    @Override
    protected Tensor chooseBackward(Tensor dGates) {
        // Slots left empty have dGates = 0: the full top-k table is the gates' own.
        Tensor ds = dAct.rows(n);
        be.gateBackward(ds, dGates, dProbs.rows(n), dLse.rows(n), probs.rows(n), topIdx.rows(n), gates.rows(n),
                GateMode.SOFTMAX_TOPK);
        if (biasOut != null) {
            be.sumRowProducts(biasOut.grad(), ds, ones.rows(n));
        }
        be.scale(ds, 1f / tau);
        if (act != null) {
            be.sigmoidGateBackward(scratch.rows(n), dLogits.rows(n), ds, ones.rows(n), logits.rows(n));
        } else {
            be.copy(dLogits.rows(n), ds);
        }
        return dLogits.rows(n);
    }
}
