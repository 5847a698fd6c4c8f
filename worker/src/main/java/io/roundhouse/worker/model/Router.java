package io.roundhouse.worker.model;

import io.roundhouse.kernels.Tensor;

/**
 * How an MoE layer chooses experts: for each token, K experts ({@link #topIdx}) and their gate
 * weights ({@link #gates}). A router owns its parameters, its forward and backward, and its
 * auxiliary losses, which may need statistics over every worker's tokens: the layer sums what
 * {@link #localStats} writes across the workers (with its dispatch counts, in one exchange) and
 * hands the sum to {@link #globalStats}.
 *
 * <p>One step runs {@code forward → localStats → (sum over workers) → globalStats → … →
 * backward → (optimizer) → afterStep}. Legend: N tokens, D width, E experts, K experts per token.
 */
interface Router {
    /**
     * Scores and chooses for x[n, D].
     *
     * @param train    training (noise, auxiliary losses) or evaluation
     * @param seed     the step's seed, and the stream and global first row that key any noise
     */
    void forward(Tensor x, boolean train, long seed, long stream, long firstRow);

    /** The chosen experts of the last forward, [n, K] int (ties to the lower index). */
    Tensor topIdx();

    /** Their gate weights, [n, K]. */
    Tensor gates();

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

    /** Auxiliary losses of the last forward (each already times its coefficient), summed. */
    float loadBalanceLoss();

    float zLoss();

    /** Σ over the last forward's tokens of the entropy of the router's distribution over experts, in nats (a metric). */
    double entropySum();

    /**
     * Backward from the gates' gradient dGates[n, K] (plus the auxiliary losses' own, in
     * training): accumulates the router's parameter gradients and returns dL/dx[n, D] through the
     * router, valid until the next call.
     */
    Tensor backward(Tensor dGates);

    /**
     * After the optimizer's step, for routers with state the step's choices move (e.g. a selection
     * bias); called once per training step, after the step's last training forward and backward.
     */
    default void afterStep() {
    }
}
