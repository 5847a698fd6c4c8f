package io.roundhouse.worker.exit;

import io.roundhouse.kernels.Activation;
import io.roundhouse.worker.model.ModelSpec;
import io.roundhouse.worker.model.NinformerSpec;

/**
 * A NiNformer's forward FLOPs per image, counted from its shapes: 2 per multiply-add of every
 * matrix product (the embedding, each block's gate, token and channel MLPs, router, the K experts a
 * patch is routed to and any shared experts or dense FFN, the head), the GEMMs that are nearly all of
 * its compute; norms, activations, softmaxes and the exchange are not counted.
 */
public final class NinformerFlops {
    private final double embed;
    private final double[] blocks;
    private final double head;
    private final int dim;
    private final int classes;

    public NinformerFlops(NinformerSpec spec) {
        ModelSpec s = spec.moe();
        int p = spec.patches();
        int d = s.dim();
        this.dim = d;
        this.classes = s.classes();
        this.embed = 2.0 * p * spec.patchInputs() * d;
        this.blocks = new double[s.blocks()];
        int f1 = s.activation() == Activation.SWIGLU ? 2 * s.expertHidden() : s.expertHidden();
        double expert = 2.0 * ((double) d * f1 + (double) s.expertHidden() * d);
        for (int b = 0; b < blocks.length; b++) {
            double gate = 2.0 * p * d * d;
            double token = 2.0 * d * (2.0 * p * spec.tokenHidden());
            double channel = 2.0 * p * (2.0 * d * spec.channelHidden());
            double ffn = spec.isMoe(b)
                    ? p * (2.0 * d * s.experts() + (s.topK() + s.sharedExperts()) * expert)
                    : 2.0 * p * (2.0 * d * spec.denseHidden());
            blocks[b] = gate + token + channel + ffn;
        }
        this.head = 2.0 * d * s.classes();
    }

    /** The embedding's. */
    public double embed() {
        return embed;
    }

    /** Block b's. */
    public double block(int b) {
        return blocks[b];
    }

    /** The embedding, every block and the head: the full-depth forward. */
    public double full() {
        double sum = embed + head;
        for (double b : blocks) {
            sum += b;
        }
        return sum;
    }

    /** Through block {@code b}: the embedding and blocks 0..b. */
    public double through(int b) {
        double sum = embed;
        for (int j = 0; j <= b; j++) {
            sum += blocks[j];
        }
        return sum;
    }

    /** An exit's head (D → C) and gate (3 → 1). */
    public double exit() {
        return 2.0 * dim * classes + 2.0 * 3;
    }

    /** The final head's. */
    public double head() {
        return head;
    }
}
