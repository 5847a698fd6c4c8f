package io.roundhouse.worker.data;

/**
 * Labelled examples whose features are floats used as given (a user's own data, e.g. from
 * Parquet: scale them beforehand as the model should see them).
 *
 * @param name     for messages
 * @param x        [count·features]
 * @param labels   [count] class ids in [0, classes)
 * @param features features per example
 * @param classes  number of classes
 */
public record FloatDataset(String name, float[] x, int[] labels, int features, int classes) implements LabeledData {

    public FloatDataset {
        if (x.length != (long) labels.length * features) {
            throw new IllegalArgumentException(name + ": " + x.length + " feature values for " + labels.length
                    + " labels of " + features + " features");
        }
    }

    @Override
    public int size() {
        return labels.length;
    }

    @Override
    public int label(int example) {
        return labels[example];
    }

    @Override
    public void features(int example, float[] out, int off) {
        System.arraycopy(x, example * features, out, off, features);
    }

    @Override
    public FloatDataset subset(String subsetName, int[] indices, int from, int n) {
        float[] v = new float[n * features];
        int[] l = new int[n];
        for (int r = 0; r < n; r++) {
            int src = indices[from + r];
            System.arraycopy(x, src * features, v, r * features, features);
            l[r] = labels[src];
        }
        return new FloatDataset(subsetName, v, l, features, classes);
    }
}
