package io.roundhouse.kernels;

import static io.roundhouse.kernels.OpTestSupport.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * The per-row regularisers (dropout with a rate per row, router jitter) and the element-wise ops the
 * Self-Tuning Network layers are built from, against plain loops and finite differences.
 */
class ElementwiseOpsTest {
    @Test
    void dropoutRowsWithOneRateIsDropoutBitForBit() {
        OpTestSupport s = new OpTestSupport(5);
        int n = 37;
        int cols = 13;  // rows straddle Philox blocks
        Tensor x = s.tensor("x", s.randn(n * cols, 1), n, cols);
        double[] p = new double[n];
        java.util.Arrays.fill(p, 0.3);
        Tensor rates = s.tensor("rates", p, n);
        Tensor want = s.poisoned("want", n, cols);
        Tensor got = s.poisoned("got", n, cols);
        s.be.dropoutForward(want, x, 0.3f, 9, 4, 26);
        s.be.dropoutRowsForward(got, x, rates, 9, 4, 26);
        assertArrayEquals(s.read(want), s.read(got));
        s.be.dropoutBackward(want, x, 0.3f, 9, 4, 26);
        s.be.dropoutRowsBackward(got, x, rates, 9, 4, 26);
        assertArrayEquals(s.read(want), s.read(got));
    }

    @Test
    void dropoutRowsUsesEachRowsRate() {
        OpTestSupport s = new OpTestSupport(6);
        int n = 4;
        int cols = 20_000;
        double[] ones = new double[n * cols];
        java.util.Arrays.fill(ones, 1);
        Tensor x = s.tensor("x", ones, n, cols);
        double[] p = {0, 0.1, 0.5, 0.85};
        Tensor y = s.poisoned("y", n, cols);
        s.be.dropoutRowsForward(y, x, s.tensor("p", p, n), 3, 2, 0);
        double[] v = s.read(y);
        for (int r = 0; r < n; r++) {
            int dropped = 0;
            for (int c = 0; c < cols; c++) {
                double e = v[r * cols + c];
                assertTrue(e == 0 || Math.abs(e - 1 / (1 - (float) p[r])) < 1e-5, "row " + r + " scales by 1/(1-p)");
                assertEquals(Philox.uniform(3, 2, (long) r * cols + c) < (float) p[r], e == 0, "element " + c);
                dropped += e == 0 ? 1 : 0;
            }
            assertEquals(p[r], dropped / (double) cols, 0.01, "row " + r + " drops its own rate");
        }
        double[] bad = {0.1, 1.0, 0, 0};
        assertThrows(IllegalArgumentException.class,
                () -> s.be.dropoutRowsForward(y, x, s.tensor("bad", bad, n), 3, 2, 0));
    }

    @Test
    void jitterMatchesAPlainLoopAndIsItsOwnBackward() {
        OpTestSupport s = new OpTestSupport(7);
        int n = 9;
        int cols = 7;
        double[] x = s.randn(n * cols, 1);
        double[] a = new double[n];
        for (int r = 0; r < n; r++) {
            a[r] = 0.05 * r;
        }
        Tensor y = s.poisoned("y", n, cols);
        s.be.jitter(y, s.tensor("x", x, n, cols), s.tensor("a", a, n), 11, 3, 5);
        double[] want = jitterRef(OpTestSupport.rounded(x), OpTestSupport.rounded(a), cols, 11, 3, 5);
        assertClose("jitter forward vs plain loop", want, s.read(y), 1e-6);
        double[] row0 = java.util.Arrays.copyOfRange(s.read(y), 0, cols);
        assertArrayEquals(java.util.Arrays.copyOfRange(OpTestSupport.rounded(x), 0, cols), row0, "amplitude 0: identity");
        for (int j = 0; j < n * cols; j++) {
            double m = s.read(y)[j] / (float) x[j];
            assertTrue(Math.abs(m - 1) <= a[j / cols] + 1e-6, "multiplier within 1 ± a at " + j);
        }
        // Backward: d/dx Σ dy·jitter(x) by finite differences equals jitter(dy).
        double[] dy = s.randn(n * cols, 1);
        double[] num = OpTestSupport.numericGrad(v -> jitterRef(v, OpTestSupport.rounded(a), cols, 11, 3, 5), x.clone(),
                OpTestSupport.rounded(dy));
        Tensor dx = s.poisoned("dx", n, cols);
        s.be.jitter(dx, s.tensor("dy", dy, n, cols), s.tensor("a2", a, n), 11, 3, 5);
        assertClose("jitter backward vs finite differences", num, s.read(dx), 1e-5);
    }

    private static double[] jitterRef(double[] x, double[] a, int cols, long seed, long stream, long first) {
        double[] y = new double[x.length];
        for (int j = 0; j < x.length; j++) {
            double u = Philox.uniform(seed, stream, first + j);
            y[j] = x[j] * (1 + a[j / cols] * (2 * u - 1));
        }
        return y;
    }

    @Test
    void multiplyAndMultiplyAddMatchPlainLoops() {
        OpTestSupport s = new OpTestSupport(8);
        int n = 6;
        int cols = 11;
        double[] a = s.randn(n * cols, 1);
        double[] b = s.randn(n * cols, 1);
        double[] row = s.randn(cols, 1);
        double[] y0 = s.randn(n * cols, 1);
        double[] ra = OpTestSupport.rounded(a);
        double[] rb = OpTestSupport.rounded(b);
        double[] rr = OpTestSupport.rounded(row);
        double[] ry = OpTestSupport.rounded(y0);
        double[] same = new double[n * cols];
        double[] bcast = new double[n * cols];
        double[] addSame = new double[n * cols];
        double[] addBcast = new double[n * cols];
        for (int j = 0; j < n * cols; j++) {
            same[j] = ra[j] * rb[j];
            bcast[j] = ra[j] * rr[j % cols];
            addSame[j] = ry[j] + same[j];
            addBcast[j] = ry[j] + bcast[j];
        }
        Tensor ta = s.tensor("a", a, n, cols);
        Tensor tb = s.tensor("b", b, n, cols);
        Tensor tr = s.tensor("row", row, cols);
        Tensor y = s.poisoned("y", n, cols);
        s.be.multiply(y, ta, tb);
        assertClose("multiply", same, s.read(y), 1e-7);
        s.be.multiply(y, ta, tr);
        assertClose("multiply by a row", bcast, s.read(y), 1e-7);
        Tensor acc = s.tensor("acc", y0, n, cols);
        s.be.multiplyAdd(acc, ta, tb);
        assertClose("multiplyAdd", addSame, s.read(acc), 1e-6);
        Tensor acc2 = s.tensor("acc2", y0, n, cols);
        s.be.multiplyAdd(acc2, ta, tr);
        assertClose("multiplyAdd with a row", addBcast, s.read(acc2), 1e-6);
        assertThrows(IllegalArgumentException.class, () -> s.be.multiply(y, ta, s.tensor("odd", s.randn(5, 1), 5)));
    }

    @Test
    void sumRowProductsAndScaleRowsMatchPlainLoops() {
        OpTestSupport s = new OpTestSupport(9);
        int n = 7;
        int cols = 5;
        double[] a = OpTestSupport.rounded(s.randn(n * cols, 1));
        double[] b = OpTestSupport.rounded(s.randn(n * cols, 1));
        double[] acc0 = OpTestSupport.rounded(s.randn(cols, 1));
        double[] want = acc0.clone();
        for (int r = 0; r < n; r++) {
            for (int c = 0; c < cols; c++) {
                want[c] += a[r * cols + c] * b[r * cols + c];
            }
        }
        Tensor acc = s.tensor("acc", acc0, cols);
        s.be.sumRowProducts(acc, s.tensor("a", a, n, cols), s.tensor("b", b, n, cols));
        assertClose("sumRowProducts accumulates", want, s.read(acc), 1e-6);

        double[] sc = OpTestSupport.rounded(s.randn(n, 1));
        double[] scaled = new double[n * cols];
        for (int j = 0; j < n * cols; j++) {
            scaled[j] = a[j] * sc[j / cols];
        }
        Tensor t = s.tensor("t", a, n, cols);
        s.be.scaleRows(t, s.tensor("s", sc, n));
        assertClose("scaleRows", scaled, s.read(t), 1e-7);
        assertThrows(IllegalArgumentException.class, () -> s.be.scaleRows(t, s.tensor("short", sc, n - 1)));
    }
}
