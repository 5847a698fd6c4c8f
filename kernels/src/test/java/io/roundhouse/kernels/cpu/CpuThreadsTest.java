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
 * forward and backward, attention forward and backward, the rotation, the attention gate) give the bits one thread
 * gives, at sizes large enough to be split. Row views are reused only for the same rows.
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

    /**
     * Attention (grouped heads, dropout on some rows), the rotation and the gate split over the threads give
     * the bits of the same calls run as one chunk: made inside another split call's first chunk,
     * while it holds the helpers, a call runs alone on its thread.
     */
    @Test
    void attentionAndRotationSplitGiveOneThreadsBits() {
        int batch = 4;
        int t = 80;  // two query tiles, the second partial
        int heads = 4;
        int kvHeads = 2;
        int dh = 8;
        float scale = 0.35f;
        CpuBackend split = new CpuBackend();
        CpuBackend alone = new CpuBackend();
        Tensor q = tensor(split, batch * t, heads * dh);
        Tensor k = tensor(split, batch * t, kvHeads * dh);
        Tensor v = tensor(split, batch * t, kvHeads * dh);
        Tensor dOut = tensor(split, batch * t, heads * dh);
        Tensor rates = split.allocate("rates", DType.FLOAT32, batch * t);
        float[] r = new float[batch * t];
        for (int i = t; i < 2 * t; i++) {
            r[i] = 0.2f;  // the second sequence drops
        }
        split.write(rates, r);
        assertEquals(Math.min(2, CpuThreads.THREADS), Math.min(2, CpuThreads.chunks(batch * kvHeads, 2L * t * t)),
                "large enough to split");

        Tensor[] a = attention(split, q, k, v, dOut, rates, batch, heads, kvHeads, scale);
        Tensor[][] b = new Tensor[1][];
        CpuThreads.rows(2, 1 << 20, (c, from, to) -> {
            if (c == 0) {
                b[0] = attention(alone, q, k, v, dOut, rates, batch, heads, kvHeads, scale);
            }
        });
        String[] names = {"out", "lse", "dq", "dk", "dv"};
        for (int i = 0; i < names.length; i++) {
            assertArrayEquals(CpuBackend.f(b[0][i]), CpuBackend.f(a[i]), names[i]);
        }

        int n = 700;
        Tensor x = tensor(split, n, heads * dh * 4);
        Tensor y = split.allocate("y", DType.FLOAT32, n, heads * dh * 4);
        Tensor want = split.allocate("want", DType.FLOAT32, n, heads * dh * 4);
        split.rope(y, x, dh, 100, 3, 10_000f, true);
        CpuThreads.rows(2, 1 << 20, (c, from, to) -> {
            if (c == 0) {
                alone.rope(want, x, dh, 100, 3, 10_000f, true);
            }
        });
        assertArrayEquals(CpuBackend.f(want), CpuBackend.f(y), "rope");

        Tensor g = tensor(split, n, heads * dh * 4);
        Tensor dy = tensor(split, n, heads * dh * 4);
        Tensor[] gates = new Tensor[6];
        for (int i = 0; i < gates.length; i++) {
            gates[i] = split.allocate("gate" + i, DType.FLOAT32, n, heads * dh * 4);
        }
        split.sigmoidGateForward(gates[0], x, g);
        split.sigmoidGateBackward(gates[1], gates[2], dy, x, g);
        CpuThreads.rows(2, 1 << 20, (c, from, to) -> {
            if (c == 0) {
                alone.sigmoidGateForward(gates[3], x, g);
                alone.sigmoidGateBackward(gates[4], gates[5], dy, x, g);
            }
        });
        for (int i = 0; i < 3; i++) {
            assertArrayEquals(CpuBackend.f(gates[3 + i]), CpuBackend.f(gates[i]), "sigmoid gate " + i);
        }
    }

    /** out, lse, dq, dk, dv of one attention forward and backward on {@code be}. */
    private static Tensor[] attention(CpuBackend be, Tensor q, Tensor k, Tensor v, Tensor dOut, Tensor rates, int batch,
                                      int heads, int kvHeads, float scale) {
        Tensor out = be.allocate("out", DType.FLOAT32, q.dim(0), q.rowSize());
        Tensor lse = be.allocate("lse", DType.FLOAT32, q.dim(0), heads);
        Tensor dq = be.allocate("dq", DType.FLOAT32, q.dim(0), q.rowSize());
        Tensor dk = be.allocate("dk", DType.FLOAT32, k.dim(0), k.rowSize());
        Tensor dv = be.allocate("dv", DType.FLOAT32, v.dim(0), v.rowSize());
        be.attentionForward(out, lse, q, k, v, batch, heads, kvHeads, scale, rates, 11L, 3L, 5L);
        be.attentionBackward(dq, dk, dv, dOut, out, lse, q, k, v, batch, heads, kvHeads, scale, rates, 11L, 3L, 5L);
        return new Tensor[] {out, lse, dq, dk, dv};
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
