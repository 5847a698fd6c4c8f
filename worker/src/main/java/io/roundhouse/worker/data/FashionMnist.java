package io.roundhouse.worker.data;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Loads Fashion-MNIST (or MNIST: same layout) from a folder of IDX files as shipped by Debian's
 * {@code dataset-fashion-mnist} package: {@code train-images-idx3-ubyte}, {@code train-labels-idx1-ubyte},
 * {@code t10k-images-idx3-ubyte}, {@code t10k-labels-idx1-ubyte}, each plain or {@code .gz}.
 */
public final class FashionMnist {
    public static final int CLASSES = 10;
    /** Pixel statistics of the Fashion-MNIST training set, for input normalisation. */
    public static final float MEAN = 0.2860f;
    public static final float STD = 0.3530f;

    private FashionMnist() {
    }

    public static DataSplits load(Path dir) {
        checkFolder(dir);
        return new DataSplits(read(dir, "train"), read(dir, "t10k"));
    }

    /** Fails with the fix when the folder or one of its four files is missing. */
    public static void checkFolder(Path dir) {
        if (!Files.isDirectory(dir)) {
            throw new DataException("data.dir " + dir + " is not a folder. Fashion-MNIST is in Debian's "
                    + "dataset-fashion-mnist package (apt-get install dataset-fashion-mnist, which puts it in "
                    + "/usr/share/datasets/fashion-mnist), or set data.dir to a folder with the four IDX files.");
        }
        for (String prefix : new String[] {"train", "t10k"}) {
            file(dir, prefix + "-images-idx3-ubyte");
            file(dir, prefix + "-labels-idx1-ubyte");
        }
    }

    private static Path file(Path dir, String base) {
        Path plain = dir.resolve(base);
        if (Files.isRegularFile(plain)) {
            return plain;
        }
        Path gz = dir.resolve(base + ".gz");
        if (Files.isRegularFile(gz)) {
            return gz;
        }
        for (Path p : new Path[] {gz, plain}) {
            if (Files.isDirectory(p)) {
                throw new DataException("data file " + p + " is a folder, not a file; put the IDX file there (data.dir "
                        + "must hold train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
                        + "t10k-labels-idx1-ubyte, plain or .gz)");
            }
        }
        throw new DataException("missing data file " + gz + " (or " + plain + "): data.dir must hold "
                + "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
                + "t10k-labels-idx1-ubyte, plain or .gz (apt-get install dataset-fashion-mnist)");
    }

    private static ImageDataset read(Path dir, String prefix) {
        Path imagesFile = file(dir, prefix + "-images-idx3-ubyte");
        Path labelsFile = file(dir, prefix + "-labels-idx1-ubyte");
        IdxReader.IdxArray images = IdxReader.read(imagesFile, 3);
        IdxReader.IdxArray labels = IdxReader.read(labelsFile, 1);
        if (images.dims()[1] != 28 || images.dims()[2] != 28) {
            throw new DataException(imagesFile + ": images are " + images.dims()[1] + "x" + images.dims()[2]
                    + ", expected 28x28");
        }
        if (images.dims()[0] != labels.dims()[0]) {
            throw new DataException(imagesFile + " has " + images.dims()[0] + " images but " + labelsFile + " has "
                    + labels.dims()[0] + " labels");
        }
        int[] y = new int[labels.dims()[0]];
        for (int i = 0; i < y.length; i++) {
            y[i] = labels.data()[i] & 0xFF;
            if (y[i] >= CLASSES) {
                throw new DataException(labelsFile + ": label " + y[i] + " at index " + i + " is outside [0, " + CLASSES + ")");
            }
        }
        return new ImageDataset(prefix.equals("t10k") ? "test" : prefix, images.data(), y, 28 * 28, CLASSES);
    }
}
