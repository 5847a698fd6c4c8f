package io.roundhouse.worker.model;

import io.roundhouse.kernels.Tensor;

/**
 * A trainable tensor with its gradient and AdamW moments, all allocated once at setup.
 *
 * @param name  dotted path, e.g. {@code block0.moe.expert.w1}
 * @param value the weights
 * @param grad  accumulated gradient (zeroed by the trainer before each step)
 * @param m     AdamW first moment
 * @param v     AdamW second moment
 * @param decay     whether weight decay applies (weight matrices yes, biases and norm gains no)
 * @param trainable whether the optimizer steps it; state that is not trained by gradient descent on
 *                  the training loss (the Self-Tuning Network's hyperparameters, stepped by their own
 *                  optimizer, which keeps its moments in m and v) is checkpointed and digested with
 *                  the weights but skipped by AdamW and the gradient all-reduce
 * @param expert    whether it belongs to the hosted experts, its first axis one entry per hosted
 *                  expert: a worker holds only its experts' slice, the dense all-reduce skips it,
 *                  checkpoints shard it by expert
 */
public record Param(String name, Tensor value, Tensor grad, Tensor m, Tensor v, boolean decay, boolean trainable,
                    boolean expert) {
}
