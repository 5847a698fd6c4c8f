package io.roundhouse.worker.train;

import io.roundhouse.comms.Collectives;
import io.roundhouse.worker.config.ConfigException;
import io.roundhouse.worker.data.Batcher;
import io.roundhouse.worker.data.DataSplits;
import io.roundhouse.worker.data.Examples;
import io.roundhouse.worker.data.LabeledData;
import io.roundhouse.worker.parallel.WorkerGroup;

/**
 * One worker's training, validation and test examples, cut from the {@link DataSplits} it was
 * given or read, with the checks that need the data's sizes.
 *
 * <p>Data with a validation split of its own (a corpus's last part) trains on all the rest.
 * Otherwise {@code data.validationExamples} are held out of the training file after a seeded
 * shuffle; with partitioned data ({@code partitioned}: the worker holds its part only) each worker
 * shuffles its own part and holds out its share.
 *
 * @param validation  null without a validation split
 * @param partitioned the examples are this worker's part of the data only
 */
record TrainingData(Examples train, Examples validation, Examples test, boolean partitioned) {

    /** This worker's examples, as a member of {@code comms} (null: the only worker). */
    static TrainingData of(RunContext context, DataSplits data, boolean partitioned, Collectives comms) {
        int rank = comms == null ? 0 : comms.member().rank();
        int workers = comms == null ? 1 : comms.member().size();
        int batch = context.batchSize();
        if (data.validation() != null) {
            if (partitioned) {
                throw new ConfigException("data.distribution = partitioned is for the classifier; the language model's "
                        + "workers each read the whole text (data.distribution=broadcast)");
            }
            if (data.train().size() < batch) {
                throw new ConfigException("train.batchSize = " + batch + " is larger than the " + data.train().size()
                        + " training sequences of the text; lower train.batchSize or data.seqLen, or give more text");
            }
            if (data.validation().size() < workers) {
                throw new ConfigException("the validation split holds " + data.validation().size() + " sequences, "
                        + "fewer than the " + workers + " workers; raise data.validationFraction or lower data.seqLen");
            }
            return new TrainingData(data.train(), data.validation(), data.test(), false);
        }
        int validation = context.validationExamples();
        if (partitioned) {
            // This worker's share of the validation examples comes out of its own part.
            validation = share(validation, rank, workers);
            batch = share(batch, rank, workers);
        }
        String source = partitioned ? "worker " + rank + "'s part of the training data" : "the training file";
        int trainSize = data.train().size() - validation;
        if (trainSize <= 0) {
            throw new ConfigException("data.validationExamples = " + validation + " leaves no training examples: "
                    + source + " has " + data.train().size() + "; lower data.validationExamples");
        }
        if (trainSize < batch) {
            throw new ConfigException("train.batchSize = " + batch + " is larger than the training split ("
                    + source + ": " + data.train().size() + " examples minus " + validation
                    + " for validation); lower one of them" + (partitioned ? " or use fewer workers" : ""));
        }
        if (!partitioned && data.test().size() < workers) {
            throw new ConfigException("the test set has " + data.test().size() + " examples, fewer than the "
                    + workers + " workers");
        }
        // A worker without a group shuffles its part with the run's seed itself (as it always has:
        // changing it would change such runs' bits); the batches' seed is always the per-worker one.
        int[] perm = Batcher.permutation(data.train().size(),
                shuffleSeed(context.seed(), partitioned && comms != null, rank));
        Examples train = data.train().subset("train", perm, 0, trainSize);
        Examples valid = validation == 0 ? null : data.train().subset("validation", perm, trainSize, validation);
        if ((context.augmentShift() > 0 || context.stn().tune().contains("augment.shift"))
                && !(train instanceof LabeledData images && images.imageSide() > 0)) {
            throw new ConfigException("augment.shift shifts square images, but the training examples are not; set "
                    + "augment.shift=0 and leave it out of stn.tune");
        }
        return new TrainingData(train, valid, data.test(), partitioned);
    }

    /**
     * The seed of a worker's shuffles: the run's, or with partitioned data one per worker (each
     * shuffles a different part).
     */
    static long shuffleSeed(long seed, boolean partitioned, int rank) {
        return partitioned ? seed + 7919L * (rank + 1) : seed;
    }

    /** Worker {@code rank}'s share of {@code n} split over {@code workers} (shares differ by at most one). */
    static int share(int n, int rank, int workers) {
        return WorkerGroup.shardStart(n, rank + 1, workers) - WorkerGroup.shardStart(n, rank, workers);
    }

    /**
     * Steps per epoch: the training examples over the batch, or with partitioned data as many as
     * the smallest part allows (its examples over its shard of the batch), since every worker must
     * make the same number of steps an epoch.
     */
    int stepsPerEpoch(WorkerGroup group, int batch) {
        if (!partitioned) {
            return train.size() / batch;
        }
        float[] steps = new float[group.size()];
        int shard = share(batch, group.rank(), group.size());
        steps[group.rank()] = train.size() / shard;
        group.sum(steps);
        int min = Integer.MAX_VALUE;
        for (float v : steps) {
            min = Math.min(min, Math.round(v));
        }
        if (min < 1) {
            throw new ConfigException("a worker's part of the training data is smaller than its " + shard
                    + " examples of each batch; lower train.batchSize or use fewer workers");
        }
        return min;
    }
}
