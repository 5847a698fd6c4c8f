package io.roundhouse.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.roundhouse.kernels.cpu.CpuBackend;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/**
 * {@link Tensor#rows}: each view covers its rows and shares the storage, and a view asked for
 * again is the same object (a step asks for views at row counts that change from step to step, so
 * views of leading rows are kept per count), from any thread.
 */
class RowViewsTest {
    @Test
    void viewsCoverTheirRowsAndAreMadeOnce() {
        try (Backend be = new CpuBackend()) {
            Tensor t = be.allocate("t", DType.FLOAT32, 6, 2);
            float[] v = new float[12];
            for (int j = 0; j < v.length; j++) {
                v[j] = j;
            }
            be.write(t, v);
            assertSame(t, t.rows(6), "all rows: the tensor itself");
            for (int n = 0; n < 6; n++) {
                Tensor view = t.rows(n);
                assertEquals(n, view.dim(0));
                assertEquals(2, view.dim(1));
                assertSame(view, t.rows(n), "rows(" + n + ") again");
                assertSame(view, t.rows(0, n), "rows(0, " + n + ") is rows(" + n + ")");
            }
            for (int from = 1; from < 6; from++) {
                Tensor view = t.rows(from, 6 - from);
                float[] got = new float[2 * (6 - from)];
                be.read(view, got);
                assertArrayEquals(java.util.Arrays.copyOfRange(v, 2 * from, 12), got, "rows from " + from);
                assertSame(view, t.rows(from, 6 - from), "rows(" + from + ", …) again");
            }
            be.write(t.rows(2, 1), new float[] {-1, -2});
            float[] all = new float[12];
            be.read(t, all);
            assertEquals(-1f, all[4], "a view writes into the tensor's storage");
            assertThrows(IllegalArgumentException.class, () -> t.rows(5, 2));
            assertThrows(IllegalArgumentException.class, () -> t.rows(-1, 2));
        }
    }

    @Test
    void manyRowsAndManyThreads() throws Exception {
        try (Backend be = new CpuBackend()) {
            Tensor big = be.allocate("big", DType.FLOAT32, (1 << 14) + 1, 1);  // past the per-count table
            assertSame(big.rows(7), big.rows(7), "the last views made are kept");
            Tensor t = be.allocate("t", DType.FLOAT32, 300, 3);
            ExecutorService pool = Executors.newFixedThreadPool(4);
            try {
                Future<?>[] f = new Future<?>[4];
                for (int w = 0; w < f.length; w++) {
                    int seed = w;
                    f[w] = pool.submit(() -> {
                        for (int i = 0; i < 20_000; i++) {
                            int n = (i * 31 + seed * 7) % 300;
                            int from = i % 5;
                            Tensor a = t.rows(n);
                            Tensor b = t.rows(from, Math.min(n, 300 - from));
                            if (a.dim(0) != n || b.dim(0) != Math.min(n, 300 - from) || a.dim(1) != 3) {
                                throw new AssertionError("a view of the wrong rows: " + a + " " + b);
                            }
                        }
                    });
                }
                for (Future<?> x : f) {
                    x.get();
                }
            } finally {
                pool.shutdown();
            }
        }
    }
}
