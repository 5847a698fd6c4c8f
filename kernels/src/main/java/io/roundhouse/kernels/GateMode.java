package io.roundhouse.kernels;

/**
 * How a router turns logits {@code h} (one row per token, E wide) into the gate weights of its top-k
 * experts S (the k largest logits; ties go to the lower expert index).
 */
public enum GateMode {
    /**
     * {@code g_j = softmax(h)_j} for j in S, not renormalised (Switch/GShard style; the gates of a
     * token sum to less than 1).
     */
    SOFTMAX_TOPK,
    /** {@code g_j = softmax(h)_j / Σ_{i∈S} softmax(h)_i}: softmax over all E, renormalised over S. */
    SOFTMAX_TOPK_RENORM,
    /**
     * {@code g = softmax(h_S)}: top-k first, softmax over the kept logits only (Mixtral style). In
     * exact arithmetic this equals {@link #SOFTMAX_TOPK_RENORM}; both are offered because users
     * know them by these names, and a test pins that they agree.
     */
    TOPK_SOFTMAX
}
