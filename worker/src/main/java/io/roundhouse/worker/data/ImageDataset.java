package io.roundhouse.worker.data;

/**
 * Labelled images as unsigned bytes (compact; normalised to {@code (p/255 − mean)/std} with the
 * Fashion-MNIST statistics on the way out).
 *
 * @param name     for messages ("train", "test", …)
 * @param pixels   [count·features] unsigned bytes
 * @param labels   [count] class ids
 * @param features features per example (784)
 * @param classes  number of classes
 */
public record ImageDataset(String name, byte[] pixels, int[] labels, int features, int classes)
        implements LabeledData {

    public ImageDataset {
        if (pixels.length != labels.length * features) {
            throw new IllegalArgumentException(name + ": " + pixels.length + " pixels for " + labels.length
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
    public void features(int example, float[] x, int off) {
        float scale = 1f / (255f * FashionMnist.STD);
        float shift = FashionMnist.MEAN / FashionMnist.STD;
        int so = example * features;
        for (int j = 0; j < features; j++) {
            x[off + j] = (pixels[so + j] & 0xFF) * scale - shift;
        }
    }

    @Override
    public int imageSide() {
        int side = (int) Math.round(Math.sqrt(features));
        return side * side == features ? side : 0;
    }

    @Override
    public float background() {
        return -FashionMnist.MEAN / FashionMnist.STD;
    }

    @Override
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
