package io.roundhouse.kernels.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.roundhouse.kernels.Activation;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Tensor;
import java.util.Random;
import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.Test;

/**
 * The CPU backend's row-parallel loops: every row is visited once, a chunk's failure reaches the
 * caller, and the ops split over threads (activations, permute forward and backward, un-permute
 * forward and backward) give the bits one thread gives, at sizes large enough to be split. Row
 * views are reused only for the same rows.
 */
class CpuThreadsTest {
    private static final Random RND = new Random(5);

    @Test
    void rowsVisitsEveryRowOnceAndRethrows() {
        int n = 100_003;
        AtomicIntegerArray seen = new AtomicIntegerArray(n);
        CpuThreads.rows(n, 64, (c, from, to) -> {
            for (int r = from; r < to; r++) {
                seen.incrementAndGet(r);
            }
        });
        for (int r = 0; r < n; r++) {
            assertEquals(1, seen.get(r), "row " + r);
        }
        assertEquals(1, CpuThreads.chunks(10, 64), "small work stays on the caller");
        assertEquals(Math.min(CpuThreads.THREADS, 1000), CpuThreads.chunks(1000, 1 << 20));
        IllegalStateException boom = new IllegalStateException("boom");
        int last = CpuThreads.chunks(n, 64) - 1;
        assertSame(boom, assertThrows(IllegalStateException.class, () -> CpuThreads.rows(n, 64, (c, from, to) -> {
            if (c == last) {
                throw boom;
            }
        })));
    }

    /** A tensor hands out its last row view again for the same rows, and a new one for others. */
    @Test
    void rowViewsAreReusedOnlyForTheSameRows() {
        CpuBackend be = new CpuBackend();
        Tensor t = be.allocate("t", DType.FLOAT32, 6, 2);
        be.write(t, new float[] {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
        Tensor a = t.rows(2, 3);
        assertSame(a, t.rows(2, 3));
        Tensor b = t.rows(3, 3);
        Tensor c = t.rows(3, 2);
        float[] got = new float[6];
        be.read(b, got);
        assertArrayEquals(new float[] {6, 7, 8, 9, 10, 11}, got);
        float[] two = new float[4];
        be.read(c, two);
        assertArrayEquals(new float[] {6, 7, 8, 9}, two);
        be.read(t.rows(2, 3), got);
        assertArrayEquals(new float[] {4, 5, 6, 7, 8, 9}, got);
    }

    @ParameterizedTest
    @EnumSource(value = Activation.class, names = {"GELU", "SWIGLU"})
    void activationsSplitGiveOneThreadsBits(Activation act) {
        int n = 3001;
        int f = 48;
        int f1 = act.preWidth(f);
        CpuBackend be = new CpuBackend();
        Tensor a = tensor(be, n, f1);
        Tensor h = be.allocate("h", DType.FLOAT32, n, f);
        be.activationForward(h, a, act);
        float[] want = new float[n * f];
        new CpuActivations().forward(want, 0, CpuBackend.f(a), 0, n, f, act);
        assertArrayEquals(want, CpuBackend.f(h));
        Tensor dh = tensor(be, n, f);
        Tensor da = be.allocate("da", DType.FLOAT32, n, f1);
        be.activationBackward(da, dh, a, act);
        float[] wantDa = new float[n * f1];
        new CpuActivations().backward(wantDa, 0, CpuBackend.f(dh), 0, CpuBackend.f(a), 0, n, f, act);
        assertArrayEquals(wantDa, CpuBackend.f(da));
    }

    @Test
    void permutesSplitGiveOneThreadsBits() {
        int n = 2500;
        int k = 2;
        int d = 40;
        int m = n * k - 7;  // some copies dropped
        CpuBackend be = new CpuBackend();
        int[] copyRow = new int[n * k];
        int[] rowToken = new int[m];
        int[] perm = shuffled(n * k);
        java.util.Arrays.fill(copyRow, -1);
        for (int row = 0; row < m; row++) {
            int c = perm[row];  // copy c = token c / k, slot c % k goes to row
            copyRow[c] = row;
            rowToken[row] = c / k;
        }
        Tensor cr = be.allocate("copyRow", DType.INT32, n, k);
        be.write(cr, copyRow);
        Tensor rt = be.allocate("rowToken", DType.INT32, m);
        be.write(rt, rowToken);
        Tensor gates = tensor(be, n, k);
        Tensor yp = tensor(be, m, d);
        Tensor dy = tensor(be, n, d);

        Tensor y = be.allocate("y", DType.FLOAT32, n, d);
        be.unpermuteForward(y, yp, cr, gates);
        float[] wantY = new float[n * d];
        for (int r = 0; r < n; r++) {
            for (int s = 0; s < k; s++) {
                int row = copyRow[r * k + s];
                if (row >= 0) {
                    for (int j = 0; j < d; j++) {
                        wantY[r * d + j] += CpuBackend.f(gates)[r * k + s] * CpuBackend.f(yp)[row * d + j];
                    }
                }
            }
        }
        assertArrayEquals(wantY, CpuBackend.f(y));

        Tensor dyp = be.allocate("dyp", DType.FLOAT32, m, d);
        Tensor dGates = be.allocate("dGates", DType.FLOAT32, n, k);
        be.unpermuteBackward(dyp, dGates, dy, yp, cr, gates);
        float[] wantDyp = new float[m * d];
        float[] wantDg = new float[n * k];
        for (int r = 0; r < n; r++) {
            for (int s = 0; s < k; s++) {
                int row = copyRow[r * k + s];
                if (row < 0) {
                    continue;
                }
                double dot = 0;
                for (int j = 0; j < d; j++) {
                    wantDyp[row * d + j] = CpuBackend.f(gates)[r * k + s] * CpuBackend.f(dy)[r * d + j];
                    dot += CpuBackend.f(dy)[r * d + j] * CpuBackend.f(yp)[row * d + j];
                }
                wantDg[r * k + s] = (float) dot;
            }
        }
        assertArrayEquals(wantDyp, CpuBackend.f(dyp));
        assertArrayEquals(wantDg, CpuBackend.f(dGates));

        Tensor xp = be.allocate("xp", DType.FLOAT32, m, d);
        be.permuteForward(xp, dy, rt, m);
        float[] wantXp = new float[m * d];
        for (int row = 0; row < m; row++) {
            System.arraycopy(CpuBackend.f(dy), rowToken[row] * d, wantXp, row * d, d);
        }
        assertArrayEquals(wantXp, CpuBackend.f(xp));

        Tensor dx = be.allocate("dx", DType.FLOAT32, n, d);
        be.permuteBackward(dx, yp, rt, m);
        float[] wantDx = new float[n * d];
        for (int row = 0; row < m; row++) {
            for (int j = 0; j < d; j++) {
                wantDx[rowToken[row] * d + j] += CpuBackend.f(yp)[row * d + j];
            }
        }
        assertArrayEquals(wantDx, CpuBackend.f(dx));
    }

    private static int[] shuffled(int n) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) {
            p[i] = i;
        }
        for (int i = n - 1; i > 0; i--) {
            int j = RND.nextInt(i + 1);
            int t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        return p;
    }

    private static Tensor tensor(CpuBackend be, int... shape) {
        Tensor t = be.allocate("t", DType.FLOAT32, shape);
        float[] v = new float[t.size()];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) RND.nextGaussian();
        }
        be.write(t, v);
        return t;
    }
}
