package io.roundhouse.worker.data;

import java.io.Serializable;

/** A job's training set (the validation split is cut from it) and its test set. */
public record DataSplits(LabeledData train, LabeledData test) implements Serializable {

    public DataSplits {
        if (train.features() != test.features() || train.classes() != test.classes()) {
            throw new DataException("the training set has " + train.features() + " features and " + train.classes()
                    + " classes but the test set " + test.features() + " and " + test.classes());
        }
    }
}
