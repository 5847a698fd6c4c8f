package io.roundhouse.worker.model;

import io.roundhouse.kernels.Backend;

/**
 * What the trainer, evaluation, checkpoints and the Self-Tuning Network need of a model: the MoE
 * classifier ({@link MoeClassifier}) and the MoE transformer language model
 * ({@link MoeTransformer}) both are one. A forward reads the leading rows of a {@link Batch},
 * computes the loss and fills {@link StepStats}; backward accumulates every parameter's gradient.
 */
public interface Model {
    /** The shape of the model's MoE parts (shared by every kind). */
    ModelSpec spec();

    /** The objective: what a row predicts and how the figure of merit is reported. */
    Objective objective();

    /** One line: the architecture, for the console. */
    String describe();

    ParamStore params();

    Backend backend();

    PhaseTimers timers();

    /** Examples (images, sequences) one forward takes at most. */
    int maxBatch();

    /** Predictions per example: 1 for the classifier, the sequence length for a language model. */
    int tokensPerExample();

    /** Rows each MoE layer routes per example: the predictions, or a NiNformer's P patches. */
    default int routedRowsPerExample() {
        return tokensPerExample();
    }

    /** MoE layers, for the expert load per layer in {@link StepStats}. */
    int moeLayers();

    /**
     * Forward pass and loss over the batch's first {@code n} examples, a worker's examples
     * {@code [firstExample, firstExample + n)} of a global batch (the dropout masks and router
     * noise are those one worker with the whole batch would draw).
     *
     * @param train training mode (dropout, router noise, capacity limit) or evaluation (none)
     * @param step  the optimizer step (selects the dropout masks)
     */
    StepStats forward(Batch batch, int n, boolean train, long seed, long step, long firstExample, StepStats stats);

    /**
     * Backward of the last forward when this worker holds part of a global batch of
     * {@code globalExamples}: the loss is the global mean, so summing the workers' gradients gives
     * the gradient one worker computes on the whole batch.
     */
    void backward(int globalExamples);

    /**
     * Has {@link #backward} call {@code done} with b as soon as block b is done, the gradients of
     * its parameters ({@code block<b>.…}) final then: the dense-gradient all-reduce starts their
     * buckets while the blocks below compute (PyTorch DDP's overlap).
     */
    void onBlockBackward(java.util.function.IntConsumer done);

    /**
     * After the optimizer's step: routers with state move it by the step's choices (the sigmoid
     * router's selection bias). Called once per training step, before any other forward.
     */
    void afterStep();

    /** The Self-Tuning Network's perturbation, or null without one. */
    Perturbation perturbation();

    /** The STN's unconstrained hyperparameters λ with their Adam moments, or null. */
    Param hyperLambda();

    /** The STN's unconstrained perturbation scales σ with their Adam moments, or null. */
    Param hyperSigma();
}
