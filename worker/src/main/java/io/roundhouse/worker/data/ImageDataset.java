package io.roundhouse.worker.data;

/**
 * Labelled examples as unsigned bytes (images stay compact; batches are normalised to float on
 * the way into a tensor).
 *
 * @param name     for messages ("train", "test", …)
 * @param pixels   [count·features] unsigned bytes
 * @param labels   [count] class ids
 * @param features features per example (784)
 * @param classes  number of classes
 */
public record ImageDataset(String name, byte[] pixels, int[] labels, int features, int classes)
        implements java.io.Serializable {

    public ImageDataset {
        if (pixels.length != labels.length * features) {
            throw new IllegalArgumentException(name + ": " + pixels.length + " pixels for " + labels.length
                    + " labels of " + features + " features");
        }
    }

    public int size() {
        return labels.length;
    }

    /** The examples at {@code indices[from, from+n)} as a new dataset (used for splits, not per step). */
    public ImageDataset subset(String subsetName, int[] indices, int from, int n) {
        byte[] p = new byte[n * features];
        int[] l = new int[n];
        for (int r = 0; r < n; r++) {
            int src = indices[from + r];
            System.arraycopy(pixels, src * features, p, r * features, features);
            l[r] = labels[src];
        }
        return new ImageDataset(subsetName, p, l, features, classes);
    }
}
