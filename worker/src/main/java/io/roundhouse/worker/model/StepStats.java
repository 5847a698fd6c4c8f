package io.roundhouse.worker.model;

/** What one forward pass measured; reused from step to step. */
public final class StepStats {
    /** Examples in the batch. */
    public int examples;
    /** Predictions in the batch: examples for the classifier, examples × T for a language model. */
    public int tokens;
    /**
     * Rows each MoE layer routes: the predictions for the classifier and the language model,
     * examples × P patches for a NiNformer (experts per token and the dropped share count these).
     */
    public int routedRows;
    /** Mean cross-entropy over the batch's predictions. */
    public double crossEntropy;
    /** Load-balancing loss, summed over blocks (already weighted by its coefficient). */
    public double loadBalanceLoss;
    /** Router z-loss, summed over blocks (already weighted by its coefficient). */
    public double zLoss;
    /** Correct top-1 predictions. */
    public int correct;
    /** Token copies dropped by the capacity limit, summed over blocks. */
    public int droppedCopies;
    /** Kept copies per block and expert, [L][E]. */
    public final int[][] expertLoad;
    /** Copies the capacity limit dropped, per block [L]. */
    public final int[] droppedByLayer;
    /** Σ over the tokens of the router's entropy (nats) per block [L]; training forwards only. */
    public final double[] routerEntropy;

    public StepStats(int blocks, int experts) {
        expertLoad = new int[blocks][experts];
        droppedByLayer = new int[blocks];
        routerEntropy = new double[blocks];
    }

    /** The loss that was differentiated: cross-entropy plus the router losses. */
    public double totalLoss() {
        return crossEntropy + loadBalanceLoss + zLoss;
    }

    public double accuracy() {
        return examples == 0 ? 0 : correct / (double) examples;
    }
}
