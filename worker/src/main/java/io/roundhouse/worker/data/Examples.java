package io.roundhouse.worker.data;

import io.roundhouse.kernels.Backend;
import java.io.Serializable;
import java.util.Map;

/**
 * A dataset the trainer walks: labelled images or feature rows ({@link LabeledData}), or packed
 * token sequences ({@link TokenSequences}). The trainer needs only its size, subsets for the splits,
 * a {@link BatchSource} and the shape the model is built for.
 */
public interface Examples extends Serializable {
    /** For messages ("train", "validation", …). */
    String name();

    int size();

    /** The examples at {@code indices[from, from + n)} as a new dataset (for splits, not per step). */
    Examples subset(String subsetName, int[] indices, int from, int n);

    /**
     * What the model's shape takes from the data, as a checkpoint's manifest records it (e.g.
     * inputs and classes, or vocabulary and sequence length).
     */
    Map<String, String> shape();

    /** A batch source over these examples for batches of at most {@code maxN}, shuffled from {@code seed}. */
    BatchSource batches(Backend be, int maxN, long seed);
}
