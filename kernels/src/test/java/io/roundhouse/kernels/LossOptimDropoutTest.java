package io.roundhouse.kernels;

import static io.roundhouse.kernels.OpTestSupport.assertClose;
import static io.roundhouse.kernels.OpTestSupport.numericGrad;
import static io.roundhouse.kernels.OpTestSupport.rounded;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Cross-entropy, AdamW and counter-based dropout. */
class LossOptimDropoutTest {

    @Test
    void crossEntropy() {
        for (int[] nc : new int[][] {{1, 2}, {1, 10}, {7, 3}, {32, 10}}) {
            int n = nc[0];
            int c = nc[1];
            OpTestSupport s = new OpTestSupport(n * 17L + c);
            double[] l = rounded(s.randn(n * c, 2));
            int[] labels = new int[n];
            for (int r = 0; r < n; r++) {
                labels[r] = s.rnd.nextInt(c);
            }
            Tensor tl = s.tensor("logits", l, n, c);
            Tensor ty = s.ints("labels", labels, n);
            Tensor losses = s.poisoned("losses", n);
            Tensor probs = s.poisoned("probs", n, c);
            s.be.crossEntropyForward(losses, probs, tl, ty);
            assertClose("ce fwd " + n + "x" + c, Ref.crossEntropy(l, labels, n, c), s.read(losses), 1e-6);
            Tensor dl = s.poisoned("dLogits", n, c);
            float scale = 1f / n;
            s.be.crossEntropyBackward(dl, probs, ty, scale);
            double[] w = new double[n];
            java.util.Arrays.fill(w, scale);
            assertClose("ce bwd " + n + "x" + c, numericGrad(v -> Ref.crossEntropy(v, labels, n, c), l.clone(), w), s.read(dl), 1e-4);
        }
    }

    @Test
    void crossEntropyNamesABadLabel() {
        OpTestSupport s = new OpTestSupport(1);
        IllegalArgumentException ex = assertThrows(IllegalArgumentException.class, () -> s.be.crossEntropyForward(
                s.be.allocate("l", DType.FLOAT32, 2), s.be.allocate("p", DType.FLOAT32, 2, 3),
                s.be.allocate("x", DType.FLOAT32, 2, 3), s.ints("y", new int[] {1, 3}, 2)));
        assertEquals("crossEntropyForward: label 3 at row 1 is outside [0, 3)", ex.getMessage());
    }

    @Test
    void adamWMatchesAPlainLoop() {
        OpTestSupport s = new OpTestSupport(2);
        int n = 37;
        double[] w = rounded(s.randn(n, 1));
        double[] m = new double[n];
        double[] v = new double[n];
        Tensor tw = s.tensor("w", w, n);
        Tensor tm = s.tensor("m", m, n);
        Tensor tv = s.tensor("v", v, n);
        double lr = 1e-2;
        double b1 = 0.9;
        double b2 = 0.999;
        double eps = 1e-8;
        double wd = 0.1;
        for (int t = 1; t <= 5; t++) {
            double[] g = rounded(s.randn(n, 1));
            s.be.adamWStep(tw, s.tensor("g", g, n), tm, tv, (float) lr, (float) b1, (float) b2, (float) eps, (float) wd, t);
            for (int j = 0; j < n; j++) {
                m[j] = b1 * m[j] + (1 - b1) * g[j];
                v[j] = b2 * v[j] + (1 - b2) * g[j] * g[j];
                double mh = m[j] / (1 - Math.pow(b1, t));
                double vh = v[j] / (1 - Math.pow(b2, t));
                w[j] -= lr * (mh / (Math.sqrt(vh) + eps) + wd * w[j]);
            }
        }
        assertClose("adamW after 5 steps", w, s.read(tw), 1e-5);
    }

    @Test
    void dropoutIsReproducibleAndUnbiased() {
        OpTestSupport s = new OpTestSupport(3);
        int n = 40_001; // not a multiple of 4: the last Philox block is partial
        double[] x = new double[n];
        java.util.Arrays.fill(x, 1.0);
        Tensor tx = s.tensor("x", x, n);
        float p = 0.3f;
        Tensor y1 = s.poisoned("y1", n);
        Tensor y2 = s.poisoned("y2", n);
        s.be.dropoutForward(y1, tx, p, 42, 7, 0);
        s.be.dropoutForward(y2, tx, p, 42, 7, 0);
        double[] a = s.read(y1);
        assertArrayEquals(a, s.read(y2), "same (seed, stream) gives the same mask");
        int dropped = 0;
        double sum = 0;
        for (int j = 0; j < n; j++) {
            assertTrue(a[j] == 0 || Math.abs(a[j] - 1 / 0.7) < 1e-6, "kept elements are scaled by 1/(1-p)");
            dropped += a[j] == 0 ? 1 : 0;
            sum += a[j];
            // The element's fate is the documented pure function of (seed, stream, index).
            assertEquals(Philox.uniform(42, 7, j) < p, a[j] == 0, "element " + j);
        }
        assertEquals(p, dropped / (double) n, 0.01, "fraction dropped");
        assertEquals(1.0, sum / n, 0.02, "inverted dropout keeps the mean");
        Tensor y3 = s.poisoned("y3", n);
        s.be.dropoutForward(y3, tx, p, 42, 8, 0);
        assertNotEquals(java.util.Arrays.toString(a), java.util.Arrays.toString(s.read(y3)), "another stream, another mask");

        // A worker holding elements [1001, n) of the same tensor gets exactly that part of the mask.
        Tensor part = s.poisoned("part", n - 1001);
        s.be.dropoutForward(part, tx.rows(1001, n - 1001), p, 42, 7, 1001);
        assertArrayEquals(java.util.Arrays.copyOfRange(a, 1001, n), s.read(part), "mask keyed by global element");

        // Backward applies the same mask: d/dx Σ dy·y = dy·mask/(1−p).
        double[] dy = s.randn(n, 1);
        Tensor dx = s.poisoned("dx", n);
        s.be.dropoutBackward(dx, s.tensor("dy", dy, n), p, 42, 7, 0);
        double[] got = s.read(dx);
        for (int j = 0; j < n; j++) {
            assertEquals((float) dy[j] * (float) a[j], got[j], 1e-5, "dx at " + j);
        }
    }

    @Test
    void dropoutRejectsABadRate() {
        OpTestSupport s = new OpTestSupport(1);
        Tensor t = s.be.allocate("x", DType.FLOAT32, 4);
        assertThrows(IllegalArgumentException.class, () -> s.be.dropoutForward(t, t, 1f, 1, 1, 0));
        assertThrows(IllegalArgumentException.class, () -> s.be.dropoutForward(t, t, -0.1f, 1, 1, 0));
    }
}
