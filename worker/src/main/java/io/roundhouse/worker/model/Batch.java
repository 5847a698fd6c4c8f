package io.roundhouse.worker.model;

import io.roundhouse.kernels.Tensor;

/**
 * A batch as a model reads it: tensors allocated once for the largest batch, of which a forward
 * uses the leading rows.
 */
public interface Batch {
    /** The classifier's features x[maxN, features]; the language model's token ids [maxN·T] (int). */
    Tensor inputs();

    /** The classifier's labels [maxN]; the language model's next tokens [maxN·T] (int). */
    Tensor targets();

    /** {@link #targets()} on the host, for metrics counted there (the classifier's accuracy). */
    int[] hostTargets();

    /** A batch over given tensors (an attack's adversarial inputs with the clean batch's labels, a set's slice). */
    record Of(Tensor inputs, Tensor targets, int[] hostTargets) implements Batch {
    }
}
