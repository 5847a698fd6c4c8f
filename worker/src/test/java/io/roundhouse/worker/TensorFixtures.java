package io.roundhouse.worker;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Tensor;

/** Moving test data in and out of backend tensors. */
final class TensorFixtures {
    private TensorFixtures() {
    }

    static Tensor tensor(Backend be, float[] v, int... shape) {
        Tensor t = be.allocate("t", DType.FLOAT32, shape);
        be.write(t, v);
        return t;
    }

    /** n normal values times {@code scale}. */
    static float[] randn(java.util.Random r, int n, double scale) {
        float[] v = new float[n];
        for (int j = 0; j < n; j++) {
            v[j] = (float) (r.nextGaussian() * scale);
        }
        return v;
    }

    /** {@code row} repeated n times (a perturbation every row shares). */
    static float[] repeatRows(float[] row, int n) {
        float[] out = new float[n * row.length];
        for (int i = 0; i < n; i++) {
            System.arraycopy(row, 0, out, i * row.length, row.length);
        }
        return out;
    }

    static float[] read(Backend be, Tensor t) {
        float[] v = new float[t.size()];
        be.read(t, v);
        return v;
    }
}
