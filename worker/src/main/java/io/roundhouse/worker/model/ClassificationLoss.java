package io.roundhouse.worker.model;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Tensor;

/**
 * The loss of the image classifiers ({@link MoeClassifier}, {@link Ninformer}): softmax
 * cross-entropy of logits[n, C] against the labels, the batch's mean loss and top-1 correct
 * predictions into {@link StepStats}, and the logits' gradient for the backward. Buffers for at most
 * {@code maxN} examples, allocated once.
 */
final class ClassificationLoss {
    private final Backend be;
    private final int classes;
    private final Tensor losses;   // [maxN]
    private final Tensor probs;    // [maxN, C]
    private final Tensor dLogits;  // [maxN, C]
    private final float[] hostLosses;
    private final float[] hostProbs;
    private Tensor labels;

    ClassificationLoss(Backend be, int maxN, int classes) {
        this.be = be;
        this.classes = classes;
        this.losses = be.allocate("losses", DType.FLOAT32, maxN);
        this.probs = be.allocate("probs", DType.FLOAT32, maxN, classes);
        this.dLogits = be.allocate("dLogits", DType.FLOAT32, maxN, classes);
        this.hostLosses = new float[maxN];
        this.hostProbs = new float[maxN * classes];
    }

    /**
     * The loss of logits[n, C] against labels[n] (int; {@code hostLabels} the same on the host):
     * sets the stats' examples, mean cross-entropy and correct predictions.
     */
    void forward(Tensor logits, Tensor labels, int[] hostLabels, StepStats stats) {
        int n = labels.dim(0);
        this.labels = labels;
        be.crossEntropyForward(losses.rows(n), probs.rows(n), logits, labels);
        be.read(losses.rows(n), hostLosses);
        be.read(probs.rows(n), hostProbs);
        double sum = 0;
        int correct = 0;
        for (int r = 0; r < n; r++) {
            sum += hostLosses[r];
            int best = 0;
            for (int j = 1; j < classes; j++) {
                if (hostProbs[r * classes + j] > hostProbs[r * classes + best]) {
                    best = j;
                }
            }
            correct += best == hostLabels[r] ? 1 : 0;
        }
        stats.examples = n;
        stats.crossEntropy = sum / n;
        stats.correct = correct;
    }

    /** Examples of the last forward. */
    int examples() {
        return labels.dim(0);
    }

    /** dLogits[n, C] of the last forward's loss as a share of a global batch's mean over {@code globalExamples}. */
    Tensor backward(int globalExamples) {
        int n = labels.dim(0);
        be.crossEntropyBackward(dLogits.rows(n), probs.rows(n), labels, 1f / globalExamples);
        return dLogits.rows(n);
    }
}
