package io.roundhouse.worker.data;

import io.roundhouse.worker.model.Batch;

/**
 * Moves examples of a dataset into a {@link Batch}: staging buffers and tensors are allocated once,
 * for at most the batch size it was made for. The order is the stored one until the first
 * {@link #shuffle}; each epoch's order is a pure function of the seed and the epoch.
 */
public interface BatchSource extends Batch {
    /** Examples in the dataset. */
    int size();

    /** Orders the examples for {@code epoch}. */
    void shuffle(int epoch);

    /** Loads examples {@code order[from, from + n)} into rows [0, n) of the batch. */
    void load(int from, int n);
}
