package io.roundhouse.kernels;

import static io.roundhouse.kernels.OpTestSupport.assertClose;

import org.junit.jupiter.api.Test;

/** Row-major sgemm against a plain loop for every transpose combination, odd sizes and k = 0. */
class BlasTest {

    @Test
    void rowMajorSgemm() {
        System.out.println("BLAS implementation: " + Blas.implementation() + (Blas.isNative() ? " (native)" : " (PURE JAVA)"));
        OpTestSupport s = new OpTestSupport(11);
        for (int[] mnk : new int[][] {{1, 1, 1}, {3, 5, 7}, {17, 2, 9}, {8, 8, 0}}) {
            int m = mnk[0];
            int n = mnk[1];
            int k = mnk[2];
            for (boolean ta : new boolean[] {false, true}) {
                for (boolean tb : new boolean[] {false, true}) {
                    double[] a = OpTestSupport.rounded(s.randn(m * k, 1));
                    double[] b = OpTestSupport.rounded(s.randn(k * n, 1));
                    double[] c = OpTestSupport.rounded(s.randn(m * n, 1));
                    double[] want = new double[m * n];
                    for (int i = 0; i < m; i++) {
                        for (int j = 0; j < n; j++) {
                            double acc = 0.5 * c[i * n + j];
                            for (int q = 0; q < k; q++) {
                                double av = ta ? a[q * m + i] : a[i * k + q];
                                double bv = tb ? b[j * k + q] : b[q * n + j];
                                acc += 2 * av * bv;
                            }
                            want[i * n + j] = acc;
                        }
                    }
                    float[] cf = OpTestSupport.toFloat(c);
                    Blas.sgemm(ta, tb, m, n, k, 2f, OpTestSupport.toFloat(a), 0, ta ? m : k,
                            OpTestSupport.toFloat(b), 0, tb ? k : n, 0.5f, cf, 0, n);
                    double[] got = new double[cf.length];
                    for (int j = 0; j < got.length; j++) {
                        got[j] = cf[j];
                    }
                    assertClose("sgemm " + m + "x" + n + "x" + k + " ta=" + ta + " tb=" + tb, want, got, 1e-5);
                }
            }
        }
    }
}
