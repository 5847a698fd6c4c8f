package io.roundhouse.kernels;

import static io.roundhouse.kernels.OpTestSupport.assertClose;
import static io.roundhouse.kernels.OpTestSupport.numericGrad;
import static io.roundhouse.kernels.OpTestSupport.rounded;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.Test;

/** Linear, activations, the grouped expert FFN and the norms: forward vs plain loops, backward vs FD. */
class DenseOpsTest {
    private static final double FWD_TOL = 1e-5;
    private static final double GRAD_TOL = 2e-4;

    @ParameterizedTest(name = "linear N={0} I={1} O={2} bias={3}")
    @CsvSource({"1,1,1,true", "1,7,3,false", "5,13,9,true", "17,32,24,true", "64,128,10,false"})
    void linear(int n, int in, int out, boolean bias) {
        OpTestSupport s = new OpTestSupport(n * 31L + in);
        double[] x = rounded(s.randn(n * in, 1));
        double[] w = rounded(s.randn(in * out, 0.3));
        double[] b = bias ? rounded(s.randn(out, 0.5)) : null;
        double[] dy = rounded(s.randn(n * out, 1));
        Tensor tx = s.tensor("x", x, n, in);
        Tensor tw = s.tensor("w", w, in, out);
        Tensor tb = bias ? s.tensor("b", b, out) : null;
        Tensor ty = s.poisoned("y", n, out);
        s.be.linearForward(ty, tx, tw, tb);
        assertClose("linear fwd " + n + "x" + in + "x" + out, Ref.linear(x, w, b, n, in, out), s.read(ty), FWD_TOL);

        Tensor tdx = s.poisoned("dx", n, in);
        Tensor tdw = s.tensor("dw", new double[in * out], in, out);
        Tensor tdb = bias ? s.tensor("db", new double[out], out) : null;
        s.be.linearBackward(tdx, tdw, tdb, s.tensor("dy", dy, n, out), tx, tw);
        assertClose("linear dx", numericGrad(v -> Ref.linear(v, w, b, n, in, out), x.clone(), dy), s.read(tdx), GRAD_TOL);
        assertClose("linear dw", numericGrad(v -> Ref.linear(x, v, b, n, in, out), w.clone(), dy), s.read(tdw), GRAD_TOL);
        if (bias) {
            assertClose("linear db", numericGrad(v -> Ref.linear(x, w, v, n, in, out), b.clone(), dy), s.read(tdb), GRAD_TOL);
        }
        // Parameter gradients accumulate: a second backward doubles them.
        double[] once = s.read(tdw);
        s.be.linearBackward(null, tdw, tdb, s.tensor("dy", dy, n, out), tx, tw);
        assertClose("linear dw accumulates", Arrays.stream(once).map(v -> 2 * v).toArray(), s.read(tdw), FWD_TOL);
    }

    /** The tied projection y = x·wᵀ, w[O,I]: against the plain loop on wᵀ, its backward against FD. */
    @ParameterizedTest(name = "linearTransposed N={0} I={1} O={2}")
    @CsvSource({"1,1,1", "5,13,9", "33,16,256"})
    void linearTransposed(int n, int in, int out) {
        OpTestSupport s = new OpTestSupport(n * 37L + out);
        double[] x = rounded(s.randn(n * in, 1));
        double[] w = rounded(s.randn(out * in, 0.3));
        double[] dy = rounded(s.randn(n * out, 1));
        Tensor tx = s.tensor("x", x, n, in);
        Tensor tw = s.tensor("w", w, out, in);
        Tensor ty = s.poisoned("y", n, out);
        s.be.linearTransposedForward(ty, tx, tw);
        assertClose("linearTransposed fwd", Ref.linear(x, transpose(w, out, in), null, n, in, out), s.read(ty), FWD_TOL);
        Tensor tdx = s.poisoned("dx", n, in);
        Tensor tdw = s.tensor("dw", new double[out * in], out, in);
        s.be.linearTransposedBackward(tdx, tdw, s.tensor("dy", dy, n, out), tx, tw);
        assertClose("linearTransposed dx", numericGrad(v -> Ref.linear(v, transpose(w, out, in), null, n, in, out),
                x.clone(), dy), s.read(tdx), GRAD_TOL);
        assertClose("linearTransposed dw", numericGrad(v -> Ref.linear(x, transpose(v, out, in), null, n, in, out),
                w.clone(), dy), s.read(tdw), GRAD_TOL);
    }

    /** m[r,c] → [c,r]. */
    private static double[] transpose(double[] m, int rows, int cols) {
        double[] t = new double[m.length];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                t[c * rows + r] = m[r * cols + c];
            }
        }
        return t;
    }

    @ParameterizedTest
    @EnumSource(Activation.class)
    void activation(Activation act) {
        for (int[] nf : new int[][] {{1, 1}, {3, 5}, {16, 33}}) {
            int n = nf[0];
            int f = nf[1];
            OpTestSupport s = new OpTestSupport(n + f);
            double[] a = rounded(s.randn(n * act.preWidth(f), 2));
            double[] dh = rounded(s.randn(n * f, 1));
            Tensor ta = s.tensor("a", a, n, act.preWidth(f));
            Tensor th = s.poisoned("h", n, f);
            s.be.activationForward(th, ta, act);
            assertClose(act + " fwd " + n + "x" + f, Ref.activation(a, n, f, act), s.read(th), FWD_TOL);
            Tensor tda = s.poisoned("da", n, act.preWidth(f));
            s.be.activationBackward(tda, s.tensor("dh", dh, n, f), ta, act);
            assertClose(act + " bwd", numericGrad(v -> Ref.activation(v, n, f, act), a.clone(), dh), s.read(tda), GRAD_TOL);
        }
    }

    /** Rows per expert, including experts that receive no tokens and a single token. */
    static final int[][] GROUPS = {{1}, {0, 5, 2}, {3, 0, 0, 7}, {1, 1, 0, 1, 4}, {0, 0, 1}};

    @ParameterizedTest
    @EnumSource(Activation.class)
    void expertFfn(Activation act) {
        for (int[] counts : GROUPS) {
            for (int[] df : new int[][] {{7, 5}, {16, 12}}) {
                checkExpertFfn(act, counts, df[0], df[1]);
            }
        }
    }

    private void checkExpertFfn(Activation act, int[] counts, int d, int f) {
        OpTestSupport.FfnCase c = new OpTestSupport.FfnCase(act, counts, d, f, 7);
        OpTestSupport s = c.s;
        int e = c.e;
        int[] offsets = c.offsets;
        int m = c.m;
        int f1 = c.f1;
        double[] x = c.x;
        double[] w1 = c.w1;
        double[] b1 = c.b1;
        double[] w2 = c.w2;
        double[] b2 = c.b2;
        double[] dy = c.dy;
        Tensor tx = s.tensor("x", x, m, d);
        Tensor tw1 = s.tensor("w1", w1, e, d, f1);
        Tensor tb1 = s.tensor("b1", b1, e, f1);
        Tensor tw2 = s.tensor("w2", w2, e, f, d);
        Tensor tb2 = s.tensor("b2", b2, e, d);
        Tensor ty = s.poisoned("y", m, d);
        Tensor ta = s.poisoned("a", m, f1);
        Tensor th = s.poisoned("h", m, f);
        String tag = act + " groups " + Arrays.toString(counts) + " D=" + d + " F=" + f;
        s.be.expertFfnForward(ty, ta, th, tx, tw1, tb1, tw2, tb2, offsets, act);
        assertClose("expertFfn fwd " + tag, Ref.expertFfn(x, w1, b1, w2, b2, offsets, d, f, act), s.read(ty), FWD_TOL);

        Tensor tdx = s.poisoned("dx", m, d);
        Tensor tdw1 = s.tensor("dw1", new double[w1.length], e, d, f1);
        Tensor tdb1 = s.tensor("db1", new double[b1.length], e, f1);
        Tensor tdw2 = s.tensor("dw2", new double[w2.length], e, f, d);
        Tensor tdb2 = s.tensor("db2", new double[b2.length], e, d);
        s.be.expertFfnBackward(tdx, tdw1, tdb1, tdw2, tdb2, s.tensor("dy", dy, m, d), tx, ta, th, tw1, tw2,
                offsets, act, s.poisoned("dh", m, f), s.poisoned("da", m, f1));
        assertClose("expertFfn dx " + tag,
                numericGrad(v -> Ref.expertFfn(v, w1, b1, w2, b2, offsets, d, f, act), x.clone(), dy), s.read(tdx), GRAD_TOL);
        assertClose("expertFfn dw1 " + tag,
                numericGrad(v -> Ref.expertFfn(x, v, b1, w2, b2, offsets, d, f, act), w1.clone(), dy), s.read(tdw1), GRAD_TOL);
        assertClose("expertFfn db1 " + tag,
                numericGrad(v -> Ref.expertFfn(x, w1, v, w2, b2, offsets, d, f, act), b1.clone(), dy), s.read(tdb1), GRAD_TOL);
        assertClose("expertFfn dw2 " + tag,
                numericGrad(v -> Ref.expertFfn(x, w1, b1, v, b2, offsets, d, f, act), w2.clone(), dy), s.read(tdw2), GRAD_TOL);
        assertClose("expertFfn db2 " + tag,
                numericGrad(v -> Ref.expertFfn(x, w1, b1, w2, v, offsets, d, f, act), b2.clone(), dy), s.read(tdb2), GRAD_TOL);
    }

    /**
     * One group at a time, each starting past row 0 (how a pipelined MoE layer runs its experts as
     * their rows arrive): every output row, a, h, dx and the input half's scratch get the bits of
     * one call over every group, at both precisions; the other rows are left alone.
     */
    @ParameterizedTest(name = "expertFfn one group at a time, {0}")
    @EnumSource(Precision.class)
    void expertFfnOneGroupAtATimeGivesTheWholeCallsBits(Precision p) {
        for (Activation act : new Activation[] {Activation.GELU, Activation.SWIGLU}) {
            OpTestSupport.FfnCase c = new OpTestSupport.FfnCase(act, new int[] {3, 0, 70, 1, 9}, 24, 40, 11);
            OpTestSupport s = c.s;
            Tensor x = s.tensor("x", c.x, c.m, c.d);
            Tensor w1 = s.tensor("w1", c.w1, c.e, c.d, c.f1);
            Tensor b1 = s.tensor("b1", c.b1, c.e, c.f1);
            Tensor w2 = s.tensor("w2", c.w2, c.e, c.f, c.d);
            Tensor b2 = s.tensor("b2", c.b2, c.e, c.d);
            Tensor dy = s.tensor("dy", c.dy, c.m, c.d);
            Tensor[] y = {s.poisoned("y", c.m, c.d), s.poisoned("y1", c.m, c.d)};
            Tensor[] a = {s.poisoned("a", c.m, c.f1), s.poisoned("a1", c.m, c.f1)};
            Tensor[] h = {s.poisoned("h", c.m, c.f), s.poisoned("h1", c.m, c.f)};
            Tensor[] dx = {s.poisoned("dx", c.m, c.d), s.poisoned("dx1", c.m, c.d)};
            Tensor[] dh = {s.poisoned("dh", c.m, c.f), s.poisoned("dh1", c.m, c.f)};
            Tensor[] da = {s.poisoned("da", c.m, c.f1), s.poisoned("da1", c.m, c.f1)};
            s.be.expertFfnForward(y[0], a[0], h[0], x, w1, b1, w2, b2, c.offsets, act, p);
            s.be.expertFfnBackwardData(dx[0], dy, a[0], w1, w2, c.offsets, act, dh[0], da[0], p);
            int[] one = new int[c.e + 1];
            for (int k = 0; k < c.e; k++) {
                for (int j = 0; j <= c.e; j++) {
                    one[j] = c.offsets[j <= k ? k : k + 1];
                }
                s.be.expertFfnForward(y[1], a[1], h[1], x, w1, b1, w2, b2, one, act, p);
                s.be.expertFfnBackwardData(dx[1], dy, a[1], w1, w2, one, act, dh[1], da[1], p);
                if (k == 1) {  // the rows past the groups so far are untouched (still NaN)
                    assertTrue(Double.isNaN(s.read(y[1].rows(c.offsets[2], 1))[0]), "a row of a later group was written");
                }
            }
            String tag = act + " " + p;
            for (Tensor[] t : List.of(y, a, h, dx, dh, da)) {
                assertArrayEquals(s.read(t[0]), s.read(t[1]), t[0] + " one group at a time, " + tag);
            }
        }
    }

    @Test
    void expertFfnRejectsBadOffsets() {
        OpTestSupport s = new OpTestSupport(1);
        Tensor w1 = s.be.allocate("w1", DType.FLOAT32, 2, 4, 3);
        Tensor w2 = s.be.allocate("w2", DType.FLOAT32, 2, 3, 4);
        Tensor x = s.be.allocate("x", DType.FLOAT32, 5, 4);
        Tensor y = s.be.allocate("y", DType.FLOAT32, 5, 4);
        Tensor a = s.be.allocate("a", DType.FLOAT32, 5, 3);
        Tensor h = s.be.allocate("h", DType.FLOAT32, 5, 3);
        IllegalArgumentException ex = assertThrows(IllegalArgumentException.class,
                () -> s.be.expertFfnForward(y, a, h, x, w1, null, w2, null, new int[] {0, 4, 2}, Activation.GELU));
        assertEquals("expertFfnForward: offsets must not decrease (expert 1)", ex.getMessage());
        assertThrows(IllegalArgumentException.class,
                () -> s.be.expertFfnForward(y, a, h, x, w1, null, w2, null, new int[] {0, 3, 9}, Activation.GELU));
    }

    @ParameterizedTest(name = "layerNorm={0}")
    @CsvSource({"true", "false"})
    void norms(boolean layerNorm) {
        for (int[] nd : new int[][] {{1, 1}, {1, 2}, {3, 7}, {9, 64}}) {
            int n = nd[0];
            int d = nd[1];
            OpTestSupport s = new OpTestSupport(n * 13L + d);
            double[] x = rounded(s.randn(n * d, 2));
            for (int j = 0; j < x.length; j++) {
                x[j] += 0.5; // a non-zero mean, so LayerNorm's centring matters
            }
            double[] g = rounded(s.randn(d, 1));
            double[] b = layerNorm ? rounded(s.randn(d, 1)) : null;
            double[] dy = rounded(s.randn(n * d, 1));
            double eps = 1e-5;
            Tensor tx = s.tensor("x", x, n, d);
            Tensor tg = s.tensor("gamma", g, d);
            Tensor tb = layerNorm ? s.tensor("beta", b, d) : null;
            Tensor ty = s.poisoned("y", n, d);
            Tensor mean = s.poisoned("mean", n);
            Tensor rstd = s.poisoned("rstd", n);
            s.be.normForward(ty, mean, rstd, tx, tg, tb, (float) eps);
            String tag = (layerNorm ? "layerNorm" : "rmsNorm") + " " + n + "x" + d;
            assertClose(tag + " fwd", Ref.norm(x, g, b, n, d, eps), s.read(ty), 1e-4);
            Tensor tdx = s.poisoned("dx", n, d);
            Tensor tdg = s.tensor("dgamma", new double[d], d);
            Tensor tdb = layerNorm ? s.tensor("dbeta", new double[d], d) : null;
            s.be.normBackward(tdx, tdg, tdb, s.tensor("dy", dy, n, d), tx, mean, rstd, tg);
            // d == 1 LayerNorm is constant in x: FD gives 0 and so must the backward.
            assertClose(tag + " dx", numericGrad(v -> Ref.norm(v, g, b, n, d, eps), x.clone(), dy), s.read(tdx), 1e-3);
            assertClose(tag + " dgamma", numericGrad(v -> Ref.norm(x, v, b, n, d, eps), g.clone(), dy), s.read(tdg), GRAD_TOL);
            if (layerNorm) {
                assertClose(tag + " dbeta", numericGrad(v -> Ref.norm(x, g, v, n, d, eps), b.clone(), dy), s.read(tdb), GRAD_TOL);
            }
        }
    }
}
