package io.roundhouse.kernels;

import static io.roundhouse.kernels.OpTestSupport.assertClose;
import static io.roundhouse.kernels.OpTestSupport.rounded;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The CPU's bf16 emulation of the layer GEMMs against plain double loops over the bf16-rounded
 * operands. A product of two bf16 values is exact in fp32, so the only difference is the fp32
 * summation: the tolerance is fp32's, not bf16's, and it tells a GEMM that rounds its operands from
 * one that does not (the test checks that too). The GPU's bf16 ops are compared with this emulation
 * by {@link CudaOpsTest}.
 */
class Bf16OpsTest {
    private static final double TOL = 1e-5;

    @Test
    void roundsToNearestEven() {
        assertEquals(1f, Precision.bf16(1f));
        assertEquals(1f, Precision.bf16(1f + 0x1p-8f), "a tie rounds to the even mantissa (down)");
        assertEquals(1f + 0x1p-6f, Precision.bf16(1f + 0x3p-8f), "a tie rounds to the even mantissa (up)");
        assertEquals(1f + 0x1p-7f, Precision.bf16(1f + 0x1p-8f + 0x1p-20f), "above the tie rounds up");
        assertEquals(-1f, Precision.bf16(-1f - 0x1p-9f));
        assertEquals(0f, Precision.bf16(0f));
        assertEquals(Float.POSITIVE_INFINITY, Precision.bf16(Float.MAX_VALUE), "past bf16's largest value");
        assertEquals(Float.NEGATIVE_INFINITY, Precision.bf16(Float.NEGATIVE_INFINITY));
        assertTrue(Float.isNaN(Precision.bf16(Float.NaN)));
        assertTrue(Float.isNaN(Precision.bf16(Float.intBitsToFloat(0x7f80_0001))), "a NaN whose payload is low bits");
        assertEquals(0x1p-133f, Precision.bf16(0x1p-133f), "subnormals keep their top bits");
        for (float v : new float[] {0.1f, 3.14159f, -123.456f, 6.1e-5f}) {
            float r = Precision.bf16(v);
            assertEquals(0, Float.floatToRawIntBits(r) & 0xffff, "bf16 keeps 16 bits");
            assertTrue(Math.abs(r - v) <= Math.ulp(v) * 0x1p15f, v + " → " + r + ": more than half a bf16 step");
        }
    }

    static double[] bf16(double[] v) {
        double[] r = new double[v.length];
        for (int j = 0; j < v.length; j++) {
            r[j] = Precision.bf16((float) v[j]);
        }
        return r;
    }

    /** c[m,n] (+)= op(a)·op(b) in double, op(a) [m,k], op(b) [k,n]. */
    static double[] gemm(double[] a, boolean ta, double[] b, boolean tb, int m, int k, int n, double[] c) {
        double[] out = c == null ? new double[m * n] : c.clone();
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int q = 0; q < k; q++) {
                    s += (ta ? a[q * m + i] : a[i * k + q]) * (tb ? b[j * k + q] : b[q * n + j]);
                }
                out[i * n + j] += s;
            }
        }
        return out;
    }

    static double[] columnSums(double[] v, int rows, int cols, double[] acc) {
        double[] out = acc.clone();
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < cols; j++) {
                out[j] += v[r * cols + j];
            }
        }
        return out;
    }

    @ParameterizedTest(name = "linear bf16 N={0} I={1} O={2}")
    @CsvSource({"1, 1, 1", "5, 13, 9", "64, 128, 10", "33, 200, 70"})
    void linear(int n, int in, int out) {
        OpTestSupport s = new OpTestSupport(n * 13L + out);
        double[] x = rounded(s.randn(n * in, 1));
        double[] w = rounded(s.randn(in * out, 0.3));
        double[] b = rounded(s.randn(out, 0.5));
        double[] dy = rounded(s.randn(n * out, 1));
        double[] dw0 = rounded(s.randn(in * out, 0.1));
        double[] db0 = rounded(s.randn(out, 0.1));
        Tensor tx = s.tensor("x", x, n, in);
        Tensor tw = s.tensor("w", w, in, out);
        Tensor tb = s.tensor("b", b, out);
        Tensor ty = s.poisoned("y", n, out);
        s.be.linearForward(ty, tx, tw, tb, Precision.BF16);
        double[] want = Ref.linear(bf16(x), bf16(w), b, n, in, out);
        assertClose("linear bf16 fwd", want, s.read(ty), TOL);
        if (n * out >= 100) {
            assertDiffers("linear fp32 fwd", want, Ref.linear(x, w, b, n, in, out));
        }

        Tensor tdx = s.poisoned("dx", n, in);
        Tensor tdw = s.tensor("dw", dw0, in, out);
        Tensor tdb = s.tensor("db", db0, out);
        s.be.linearBackward(tdx, tdw, tdb, s.tensor("dy", dy, n, out), tx, tw, Precision.BF16);
        assertClose("linear bf16 dx", gemm(bf16(dy), false, bf16(w), true, n, out, in, null), s.read(tdx), TOL);
        assertClose("linear bf16 dw", gemm(bf16(x), true, bf16(dy), false, in, n, out, dw0), s.read(tdw), TOL);
        assertClose("linear bf16 db (dy unrounded)", columnSums(dy, n, out, db0), s.read(tdb), TOL);
    }

    /**
     * Stage by stage, each GEMM from the op's own saved tensors (a, h, and dh, da in the scratch
     * tensors) so an activation's last-ulp difference cannot flip a bf16 rounding in the reference.
     */
    @ParameterizedTest
    @EnumSource(Activation.class)
    void expertFfn(Activation act) {
        for (int[] counts : DenseOpsTest.GROUPS) {
            checkExpertFfn(act, counts, 16, 12);
        }
        checkExpertFfn(act, new int[] {40, 0, 90}, 64, 48);
    }

    private void checkExpertFfn(Activation act, int[] counts, int d, int f) {
        OpTestSupport.FfnCase c = new OpTestSupport.FfnCase(act, counts, d, f, 5);
        OpTestSupport s = c.s;
        int e = c.e;
        int f1 = c.f1;
        int m = c.m;
        Tensor tx = s.tensor("x", c.x, m, d);
        Tensor tw1 = s.tensor("w1", c.w1, e, d, f1);
        Tensor tw2 = s.tensor("w2", c.w2, e, f, d);
        Tensor ta = s.poisoned("a", m, f1);
        Tensor th = s.poisoned("h", m, f);
        Tensor ty = s.poisoned("y", m, d);
        s.be.expertFfnForward(ty, ta, th, tx, tw1, s.tensor("b1", c.b1, e, f1), tw2, s.tensor("b2", c.b2, e, d),
                c.offsets, act, Precision.BF16);
        Tensor tdx = s.poisoned("dx", m, d);
        Tensor tdw1 = s.tensor("dw1", new double[c.w1.length], e, d, f1);
        Tensor tdb1 = s.tensor("db1", new double[c.b1.length], e, f1);
        Tensor tdw2 = s.tensor("dw2", new double[c.w2.length], e, f, d);
        Tensor tdb2 = s.tensor("db2", new double[c.b2.length], e, d);
        Tensor tdh = s.poisoned("dh", m, f);
        Tensor tda = s.poisoned("da", m, f1);
        s.be.expertFfnBackward(tdx, tdw1, tdb1, tdw2, tdb2, s.tensor("dy", c.dy, m, d), tx, ta, th, tw1, tw2,
                c.offsets, act, tdh, tda, Precision.BF16);
        double[] a = s.read(ta);
        double[] h = s.read(th);
        double[] da = s.read(tda);
        for (int ex = 0; ex < e; ex++) {
            int r0 = c.offsets[ex];
            int rows = counts[ex];
            String tag = act + " expert " + ex + " of groups " + java.util.Arrays.toString(counts) + ": ";
            double[] xe = bf16(Ref.slice(c.x, r0 * d, rows * d));
            double[] w1e = bf16(Ref.slice(c.w1, ex * d * f1, d * f1));
            double[] w2e = bf16(Ref.slice(c.w2, ex * f * d, f * d));
            double[] he = bf16(Ref.slice(h, r0 * f, rows * f));
            double[] dye = bf16(Ref.slice(c.dy, r0 * d, rows * d));
            double[] dae = Ref.slice(da, r0 * f1, rows * f1);
            assertClose(tag + "a", Ref.linear(xe, w1e, Ref.slice(c.b1, ex * f1, f1), rows, d, f1),
                    Ref.slice(a, r0 * f1, rows * f1), TOL);
            assertClose(tag + "y", Ref.linear(he, w2e, Ref.slice(c.b2, ex * d, d), rows, f, d),
                    Ref.slice(s.read(ty), r0 * d, rows * d), TOL);
            assertClose(tag + "dh", gemm(dye, false, w2e, true, rows, d, f, null),
                    Ref.slice(s.read(tdh), r0 * f, rows * f), TOL);
            assertClose(tag + "dw2", gemm(he, true, dye, false, f, rows, d, null),
                    Ref.slice(s.read(tdw2), ex * f * d, f * d), TOL);
            assertClose(tag + "db2", columnSums(Ref.slice(c.dy, r0 * d, rows * d), rows, d, new double[d]),
                    Ref.slice(s.read(tdb2), ex * d, d), TOL);
            assertClose(tag + "dx", gemm(bf16(dae), false, w1e, true, rows, f1, d, null),
                    Ref.slice(s.read(tdx), r0 * d, rows * d), TOL);
            assertClose(tag + "dw1", gemm(xe, true, bf16(dae), false, d, rows, f1, null),
                    Ref.slice(s.read(tdw1), ex * d * f1, d * f1), TOL);
            assertClose(tag + "db1", columnSums(dae, rows, f1, new double[f1]), Ref.slice(s.read(tdb1), ex * f1, f1),
                    TOL);
        }
    }

    /** The fp32 result must differ from the bf16 one by more than the tolerance: rounding happened. */
    private static void assertDiffers(String what, double[] bf16, double[] fp32) {
        double worst = 0;
        double scale = 1e-30;
        for (int j = 0; j < bf16.length; j++) {
            worst = Math.max(worst, Math.abs(bf16[j] - fp32[j]));
            scale = Math.max(scale, Math.abs(fp32[j]));
        }
        assertTrue(worst > 10 * TOL * scale, what + " is within " + worst / scale
                + " of bf16: the test cannot tell them apart");
    }
}
