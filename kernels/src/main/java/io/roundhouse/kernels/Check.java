package io.roundhouse.kernels;

import java.util.Arrays;

/** Shape checks shared by the backends: every failure names the op, the tensor and the shapes. */
final class Check {
    private Check() {
    }

    static void shape(String op, Tensor t, int... expected) {
        if (t.rank() != expected.length) {
            throw new IllegalArgumentException(op + ": " + t.name() + " has shape " + Arrays.toString(t.shape())
                    + ", expected " + Arrays.toString(expected));
        }
        for (int i = 0; i < expected.length; i++) {
            if (t.dim(i) != expected[i]) {
                throw new IllegalArgumentException(op + ": " + t.name() + " has shape " + Arrays.toString(t.shape())
                        + ", expected " + Arrays.toString(expected));
            }
        }
    }

    static void atLeastRows(String op, Tensor t, int rows, int rowSize) {
        if (t.dim(0) < rows || t.rowSize() != rowSize) {
            throw new IllegalArgumentException(op + ": " + t.name() + " has shape " + Arrays.toString(t.shape())
                    + ", needs at least " + rows + " rows of " + rowSize);
        }
    }

    static void sameSize(String op, Tensor a, Tensor b) {
        if (a.size() != b.size()) {
            throw new IllegalArgumentException(op + ": " + a + " and " + b + " differ in size");
        }
    }

    static void that(boolean ok, String message) {
        if (!ok) {
            throw new IllegalArgumentException(message);
        }
    }
}
