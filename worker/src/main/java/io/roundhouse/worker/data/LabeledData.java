package io.roundhouse.worker.data;

import io.roundhouse.kernels.Backend;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Labelled examples with a fixed number of features, as the model reads them: {@link ImageDataset}
 * (bytes, normalised on the way out) or {@link FloatDataset} (features as given).
 */
public interface LabeledData extends Examples {
    /** Features per example. */
    int features();

    /** Number of classes; labels are in [0, classes). */
    int classes();

    int label(int example);

    /** Example {@code example}'s features, ready for the model, into {@code x[off, off + features)}. */
    void features(int example, float[] x, int off);

    /** The side of the square images the examples are (row-major), or 0 when they are not images. */
    default int imageSide() {
        return 0;
    }

    /** The value a blank pixel has as the model reads it (what a shifted image's border is filled with). */
    default float background() {
        return 0f;
    }

    @Override
    LabeledData subset(String subsetName, int[] indices, int from, int n);

    @Override
    default Map<String, String> shape() {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("inputs", String.valueOf(features()));
        m.put("classes", String.valueOf(classes()));
        return m;
    }

    @Override
    default Batcher batches(Backend be, int maxN, long seed) {
        return new Batcher(be, this, maxN, seed);
    }
}
