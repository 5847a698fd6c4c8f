package io.roundhouse.worker.model;

import io.roundhouse.kernels.Tensor;

/**
 * An image classifier ({@link MoeClassifier}, {@link Ninformer}): what attacks and adversarial
 * training need beyond {@link Model}: the loss's objective, gradients with respect to the input,
 * and the experts each routed row chose.
 */
public interface ImageModel extends Model {
    /** The loss the next forwards compute (cross-entropy unless an attack or TRADES switches it). */
    ClassificationLoss loss();

    /**
     * {@link #backward(int)} of the last forward, and the loss's gradient with respect to that
     * forward's inputs.
     *
     * @return dL/dx [n, inputs], valid until the next backward
     */
    Tensor backwardToInput(int globalExamples);

    /**
     * MoE layer {@code layer}'s copy table of the last forward, [rows, S] int (the expert of each
     * copy, −1 for an empty slot); a row is an image for the classifier, a patch for the NiNformer.
     */
    Tensor routedExperts(int layer);
}
