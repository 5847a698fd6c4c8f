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

    static float[] read(Backend be, Tensor t) {
        float[] v = new float[t.size()];
        be.read(t, v);
        return v;
    }
}
