package io.roundhouse.worker.model;

import io.roundhouse.worker.config.ConfigException;
import io.roundhouse.worker.config.ConfigKeys;
import io.roundhouse.worker.config.JobConfig;

/**
 * The shape of an MoE transformer language model beyond its MoE parts ({@link #moe}: width, blocks,
 * experts, top-k, expert hidden width, gating, router losses, residual dropout as
 * {@code dropoutBlock}).
 *
 * @param moe              the MoE parts; {@code inputs} and {@code classes} are the vocabulary
 * @param seqLen           tokens per sequence T
 * @param heads            query heads H
 * @param kvHeads          key/value heads (H: multi-head; fewer: grouped-query attention)
 * @param ropeTheta        the rotary embedding's base
 * @param moeEvery         block b's FFN is MoE when {@code moeEvery > 0 && (b + 1) % moeEvery == 0}
 *                         (1: every block, 2: every other, 0: none, the dense baseline)
 * @param denseHidden      hidden width of a dense block's SwiGLU FFN
 * @param attentionGate    the sigmoid gate on each head's attention output
 * @param dropoutAttention dropout on the attention probabilities
 * @param tiedEmbeddings   the output projection is the embedding table's transpose
 */
public record LmSpec(ModelSpec moe, int seqLen, int heads, int kvHeads, double ropeTheta, int moeEvery,
                     int denseHidden, boolean attentionGate, double dropoutAttention, boolean tiedEmbeddings) {

    /** A model with its own output projection. */
    public LmSpec(ModelSpec moe, int seqLen, int heads, int kvHeads, double ropeTheta, int moeEvery, int denseHidden,
                  boolean attentionGate, double dropoutAttention) {
        this(moe, seqLen, heads, kvHeads, ropeTheta, moeEvery, denseHidden, attentionGate, dropoutAttention, false);
    }

    public LmSpec {
        if (moe.dim() % heads != 0) {
            throw new ConfigException("model.dim = " + moe.dim() + " does not split into model.heads = " + heads
                    + " heads; choose heads dividing the width");
        }
        if ((moe.dim() / heads) % 2 != 0) {
            throw new ConfigException("the head width model.dim/model.heads = " + moe.dim() / heads + " is odd; "
                    + "rotary embeddings rotate pairs, so choose an even head width");
        }
        if (heads % kvHeads != 0) {
            throw new ConfigException("model.kvHeads = " + kvHeads + " must divide model.heads = " + heads);
        }
    }

    /** The fixed value of the model's hyperparameter {@code h} (its initial value when tuned). */
    public double fixed(Hyper h) {
        return h == Hyper.DROPOUT_ATTENTION ? dropoutAttention : moe.fixed(h);
    }

    /** The same model with a Self-Tuning Network. */
    public LmSpec withStn(StnSpec s) {
        return new LmSpec(moe.withStn(s), seqLen, heads, kvHeads, ropeTheta, moeEvery, denseHidden, attentionGate,
                dropoutAttention, tiedEmbeddings);
    }

    public int vocabulary() {
        return moe.classes();
    }

    public int headDim() {
        return moe.dim() / heads;
    }

    public boolean isMoe(int block) {
        return moeEvery > 0 && (block + 1) % moeEvery == 0;
    }

    /** The language model a job configuration describes, for a vocabulary of {@code vocabulary}. */
    public static LmSpec from(JobConfig c, int vocabulary) {
        ModelSpec m = ModelSpec.from(c, vocabulary, vocabulary);
        int dense = c.get(ConfigKeys.MODEL_DENSE_HIDDEN);
        return new LmSpec(m, c.get(ConfigKeys.DATA_SEQ_LEN), c.get(ConfigKeys.MODEL_HEADS),
                c.get(ConfigKeys.MODEL_KV_HEADS) == 0 ? c.get(ConfigKeys.MODEL_HEADS) : c.get(ConfigKeys.MODEL_KV_HEADS),
                c.get(ConfigKeys.MODEL_ROPE_THETA), c.get(ConfigKeys.MODEL_MOE_EVERY),
                dense > 0 ? dense : m.topK() * m.expertHidden(), c.get(ConfigKeys.MODEL_ATTENTION_GATE).equals("on"),
                c.get(ConfigKeys.MODEL_DROPOUT_ATTENTION), c.get(ConfigKeys.MODEL_TIE_EMBEDDINGS).equals("on"));
    }
}
