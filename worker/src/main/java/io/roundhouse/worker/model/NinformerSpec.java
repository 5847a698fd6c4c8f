package io.roundhouse.worker.model;

import io.roundhouse.worker.config.ConfigException;
import io.roundhouse.worker.config.ConfigKeys;
import io.roundhouse.worker.config.JobConfig;

/**
 * The shape of a NiNformer beyond its MoE parts ({@link #moe}: width D, blocks, experts, top-k,
 * expert hidden width, router, residual dropout as {@code dropoutBlock}, input dropout).
 *
 * @param moe           the MoE parts; {@code inputs} is channels·side², {@code classes} the classes
 * @param channels      image channels c (1 for Fashion-MNIST)
 * @param side          image side S in pixels
 * @param patch         patch side p in pixels, dividing S: P = (S/p)² patches per image
 * @param tokenHidden   hidden width of the token-mixing MLP (across an image's patches)
 * @param channelHidden hidden width of the channel-mixing MLP
 * @param moeEvery      block b's FFN is MoE when {@code moeEvery > 0 && (b + 1) % moeEvery == 0}
 * @param denseHidden   hidden width of a dense block's GELU FFN
 */
public record NinformerSpec(ModelSpec moe, int channels, int side, int patch, int tokenHidden, int channelHidden,
                            int moeEvery, int denseHidden) {

    public NinformerSpec {
        if (channels < 1 || side < 1 || channels * side * side != moe.inputs()) {
            throw new ConfigException("a NiNformer needs square images: " + moe.inputs() + " input features are not "
                    + channels + " channel(s) of a square side; use image data (data.format = idx)");
        }
        if (patch < 1 || side % patch != 0) {
            throw new ConfigException("model.patchSize = " + patch + " does not divide the image side " + side
                    + "; choose one of " + divisors(side));
        }
        if (tokenHidden < 1 || channelHidden < 1 || denseHidden < 1) {
            throw new IllegalArgumentException("hidden widths must be positive: token " + tokenHidden + ", channel "
                    + channelHidden + ", dense " + denseHidden);
        }
    }

    /** Patches per image, P. */
    public int patches() {
        int perSide = side / patch;
        return perSide * perSide;
    }

    /** Inputs per patch, c·p². */
    public int patchInputs() {
        return channels * patch * patch;
    }

    public boolean isMoe(int block) {
        return moeEvery > 0 && (block + 1) % moeEvery == 0;
    }

    /** The NiNformer a job configuration describes for single-channel square images of {@code inputs} pixels. */
    public static NinformerSpec from(JobConfig c, int inputs, int classes) {
        ModelSpec m = ModelSpec.from(c, inputs, classes);
        int side = (int) Math.round(Math.sqrt(inputs));
        if (side * side != inputs) {
            throw new ConfigException("model.kind = ninformer needs square images; the data has " + inputs
                    + " features per example; use image data (data.format = idx)");
        }
        int patch = c.get(ConfigKeys.MODEL_PATCH_SIZE);
        int perSide = patch >= 1 && side % patch == 0 ? side / patch : 1;
        int token = c.get(ConfigKeys.MODEL_TOKEN_HIDDEN);
        int channel = c.get(ConfigKeys.MODEL_CHANNEL_HIDDEN);
        int dense = c.get(ConfigKeys.MODEL_DENSE_HIDDEN);
        return new NinformerSpec(m, 1, side, patch, token > 0 ? token : 2 * perSide * perSide,
                channel > 0 ? channel : 2 * m.dim(), c.get(ConfigKeys.MODEL_MOE_EVERY),
                dense > 0 ? dense : m.topK() * m.expertHidden());
    }

    private static String divisors(int n) {
        StringBuilder sb = new StringBuilder();
        for (int k = 1; k <= n; k++) {
            if (n % k == 0) {
                sb.append(sb.length() == 0 ? "" : ", ").append(k);
            }
        }
        return sb.toString();
    }
}
