package io.roundhouse.worker.model;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.GateMode;
import io.roundhouse.kernels.Tensor;

/**
 * The token-choice top-k routers over the logits h ({@link LinearRouter}):
 * <ul>
 *   <li>{@link RouterSpec.Kind#SOFTMAX}: {@code softmax(h)}, the K largest logits' experts, their
 *   gates by {@link GateMode};</li>
 *   <li>{@link RouterSpec.Kind#SIGMOID} (DeepSeek-V3): scores {@code σ(h)}, the K largest
 *   {@code σ(h_e) + b_e}, gates the chosen scores normalised to sum 1. The bias b (state, not
 *   trained by gradient) moves after every training step by {@code γ·sign(mean load − load_e)}
 *   over every worker's choices, so every worker holds the same b. Its load-balancing loss's P
 *   is the scores normalised over every expert (DeepSeek-V3's complementary balance loss, here
 *   over the batch).</li>
 * </ul>
 * Every token fills its K slots.
 */
final class TopKRouter extends LinearRouter {
    private final GateMode gateMode;
    private final RouterSpec.Kind kind;
    private final float biasRate;
    final Param bias;     // [E] the sigmoid router's selection bias (state), or null
    private final float[] hostBias;

    TopKRouter(Backend be, ParamStore ps, String name, ModelSpec spec, int maxN) {
        super(be, ps, name, spec, maxN, spec.topK(), spec.loadBalance(), false);
        this.gateMode = spec.gate();
        this.kind = spec.router().kind();
        this.biasRate = (float) spec.router().biasRate();
        bias = kind == RouterSpec.Kind.SIGMOID ? ps.state(name + ".router.bias", e) : null;
        hostBias = new float[e];
    }

    @Override
    protected void choose(RouterContext ctx) {
        if (kind == RouterSpec.Kind.SIGMOID) {
            be.sigmoidTopKForward(probs.rows(n), lse.rows(n), copies.rows(n), gates.rows(n), logits.rows(n),
                    bias.value());
        } else {
            be.gateForward(probs.rows(n), lse.rows(n), copies.rows(n), gates.rows(n), logits.rows(n), gateMode);
        }
    }

    @Override
    protected Tensor chooseBackward(Tensor dGates) {
        if (kind == RouterSpec.Kind.SIGMOID) {
            be.sigmoidTopKBackward(dLogits.rows(n), dGates, dProbs.rows(n), dLse.rows(n), logits.rows(n), lse.rows(n),
                    copies.rows(n), gates.rows(n));
        } else {
            be.gateBackward(dLogits.rows(n), dGates, dProbs.rows(n), dLse.rows(n), probs.rows(n), copies.rows(n),
                    gates.rows(n), gateMode);
        }
        return dLogits.rows(n);
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
}
