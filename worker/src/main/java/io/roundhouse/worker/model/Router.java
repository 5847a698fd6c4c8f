package io.roundhouse.worker.model;

import io.roundhouse.kernels.Tensor;

/**
 * How an MoE layer chooses experts: a table of token copies, {@link #slots} per token, slot (n, s)
 * holding the expert of one copy of token n and its gate weight, or −1 when the slot is empty
 * ({@link #copies}, {@link #gates}). Token-choice top-k fills K slots of every token; a threshold
 * leaves some empty; expert choice gives a token between 0 and E copies. A padded table rather than
 * a flat list keeps the un-permute a gather of fixed stride (one thread per token on a GPU) at the
 * cost of N·S ints.
 *
 * <p>A router owns its parameters, its forward and backward, and its auxiliary losses, which may
 * need statistics over every worker's tokens: the layer sums what {@link #localStats} writes across
 * the workers (with its dispatch counts, in one exchange) and hands the sum to {@link #globalStats}.
 *
 * <p>One step runs {@code forward → localStats → (sum over workers) → globalStats → … → backward →
 * (optimizer) → afterStep}. Legend: N tokens, D width, E experts, S slots per token.
 */
interface Router {
    /** Scores and chooses for x[n, D]. */
    void forward(Tensor x, RouterContext ctx);

    /** Slots per token S: the copy table's width. */
    int slots();

    /** The last forward's copy table [n, S] int: the expert of each copy, −1 for an empty slot. */
    Tensor copies();

    /** Their gate weights, [n, S] (an empty slot's is never read). */
    Tensor gates();

    /**
     * Whether the router's choice already bounds each expert's copies (expert choice): the layer's
     * capacity limit then does not apply.
     */
    default boolean bounded() {
        return false;
    }

    /** Floats of statistics {@link #localStats} writes. */
    int statsSize();

    /**
     * This worker's statistics of the last forward into {@code stats[0, statsSize())}.
     *
     * @param selected the copies each expert was chosen for, before any capacity limit, [E]
     */
    void localStats(float[] stats, int[] selected);

    /** The statistics summed over every worker: computes the auxiliary losses. */
    void globalStats(float[] stats);

    /** The balancing losses of the last forward (each already times its coefficient), summed. */
    float loadBalanceLoss();

    float zLoss();

    /** Σ over the last forward's tokens of the entropy of the router's distribution over experts, in nats (a metric). */
    double entropySum();

    /**
     * Backward from the gates' gradient dGates[n, S] (0 at empty and dropped slots; plus the
     * auxiliary losses' own, in training): accumulates the router's parameter gradients and returns
     * dL/dx[n, D] through the router, valid until the next call.
     */
    Tensor backward(Tensor dGates);

    /**
     * After the optimizer's step, for routers with state the step's choices move (e.g. a selection
     * bias); called once per training step, after the step's last training forward and backward.
     */
    default void afterStep() {
    }
}
