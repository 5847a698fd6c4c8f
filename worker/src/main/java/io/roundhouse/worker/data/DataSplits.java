package io.roundhouse.worker.data;

import java.io.Serializable;

/**
 * A job's data: the training set, a validation set given by the data (the last part of a corpus)
 * or null (then the trainer holds {@code data.validationExamples} out of the training set), and the
 * set the run reports at its end (the classifier's test set; a corpus's validation split).
 */
public record DataSplits(Examples train, Examples validation, Examples test) implements Serializable {

    public DataSplits {
        if (train instanceof LabeledData a && test instanceof LabeledData b
                && (a.features() != b.features() || a.classes() != b.classes())) {
            throw new DataException("the training set has " + a.features() + " features and " + a.classes()
                    + " classes but the test set " + b.features() + " and " + b.classes());
        }
    }

    /** A training set (validation held out of it) and a test set. */
    public DataSplits(Examples train, Examples test) {
        this(train, null, test);
    }
}
