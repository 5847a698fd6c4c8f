package io.roundhouse.worker.train;

import io.roundhouse.worker.model.Model;
import io.roundhouse.worker.model.StepStats;

/**
 * A step's statistics as they travel in the step's one all-reduce (after the dense gradients):
 * this worker's {@link #local} statistics packed into {@link #buffer}, the sums unpacked into
 * {@link #global}. Allocated once per run.
 *
 * <p>Layout (B MoE layers, E experts, W workers): [0, 7) cross-entropy·tokens, correct, examples,
 * dropped copies, z-loss, tokens, routed rows; then B·E expert loads; then B dropped copies and B router
 * entropy sums, per layer; then W compute times in ms (each worker writes its own, the rest are 0);
 * then the job owner's command (rank 0 writes it).
 */
final class StepSums {
    /** Statistics before the expert loads. */
    private static final int STATS = 7;

    /** This worker's statistics of the step's forward (evaluation reuses it). */
    final StepStats local;
    /** The global batch's statistics, once unpacked. */
    final StepStats global;
    /** Every worker's time outside communication this step, in ms (its spread is what the fastest waits). */
    final double[] computeMs;
    private final float[] sums;
    private final int layers;
    private final int experts;

    StepSums(Model model, int workers) {
        this.layers = model.moeLayers();
        this.experts = model.spec().experts();
        this.local = new StepStats(layers, experts);
        this.global = new StepStats(layers, experts);
        this.sums = new float[STATS + layers * experts + 2 * layers + workers + 1];  // + the owner's command
        this.computeMs = new double[workers];
    }

    /** The buffer the all-reduce sums (its length is what the gradient sync reserves). */
    float[] buffer() {
        return sums;
    }

    /**
     * This step's {@link #local} statistics, worker {@code rank}'s time outside communication and
     * the owner's {@code command} (rank 0's; {@link MetricsSink#NONE} elsewhere) into the buffer.
     */
    void pack(long computeNanos, int rank, int command) {
        sums[0] = (float) (local.crossEntropy * local.tokens);
        sums[1] = local.correct;
        sums[2] = local.examples;
        sums[3] = local.droppedCopies;
        sums[4] = (float) local.zLoss;  // each worker's share of the global z-loss
        sums[5] = local.tokens;
        sums[6] = local.routedRows;
        for (int b = 0; b < layers; b++) {
            for (int j = 0; j < experts; j++) {
                sums[STATS + b * experts + j] = local.expertLoad[b][j];
            }
        }
        int layer = STATS + layers * experts;
        for (int b = 0; b < layers; b++) {
            sums[layer + b] = local.droppedByLayer[b];
            sums[layer + layers + b] = (float) local.routerEntropy[b];
        }
        int at = layer + 2 * layers;
        java.util.Arrays.fill(sums, at, sums.length, 0f);
        sums[at + rank] = computeNanos / 1e6f;
        sums[sums.length - 1] = command;
    }

    /** The job owner's command for this step (after {@link #unpack}: the same on every worker). */
    int command() {
        return Math.round(sums[sums.length - 1]);
    }

    /** {@link #global} and {@link #computeMs} from the summed buffer. */
    void unpack() {
        int layer = STATS + layers * experts;
        for (int b = 0; b < layers; b++) {
            global.droppedByLayer[b] = Math.round(sums[layer + b]);
            global.routerEntropy[b] = sums[layer + layers + b];
        }
        int at = layer + 2 * layers;
        for (int w = 0; w < computeMs.length; w++) {
            computeMs[w] = sums[at + w];
        }
        global.examples = Math.round(sums[2]);
        global.tokens = Math.round(sums[5]);
        global.routedRows = Math.round(sums[6]);
        global.crossEntropy = sums[0] / global.tokens;
        global.correct = Math.round(sums[1]);
        global.droppedCopies = Math.round(sums[3]);
        global.zLoss = sums[4];
        global.loadBalanceLoss = local.loadBalanceLoss;  // computed from global statistics already
        for (int b = 0; b < layers; b++) {
            for (int j = 0; j < experts; j++) {
                global.expertLoad[b][j] = Math.round(sums[STATS + b * experts + j]);
            }
        }
    }
}
