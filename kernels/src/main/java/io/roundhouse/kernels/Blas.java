package io.roundhouse.kernels;

import dev.ludovic.netlib.blas.BLAS;
import dev.ludovic.netlib.blas.NativeBLAS;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Row-major sgemm on top of netlib's column-major BLAS. Loads the system BLAS (OpenBLAS from
 * Debian's libopenblas0-pthread) through dev.ludovic.netlib, logs which implementation it got, and
 * warns loudly when it fell back to pure Java (about 10× slower).
 */
public final class Blas {
    private static final Logger LOG = LoggerFactory.getLogger(Blas.class);
    private static final BLAS BLAS_INSTANCE = load();

    private Blas() {
    }

    private static BLAS load() {
        BLAS b = BLAS.getInstance();
        if (b instanceof NativeBLAS) {
            LOG.info("BLAS: native {} (system libblas.so.3)", b.getClass().getSimpleName());
        } else {
            LOG.warn("BLAS: FELL BACK TO PURE JAVA ({}): matrix math will be about 10x slower. "
                    + "Install the system OpenBLAS (Debian/Ubuntu: apt-get install libopenblas0-pthread) "
                    + "or point -Ddev.ludovic.netlib.blas.nativeLib at a libblas.so.3.", b.getClass().getSimpleName());
        }
        return b;
    }

    /** The implementation in use, e.g. "JNIBLAS" or "VectorBLAS". */
    public static String implementation() {
        return BLAS_INSTANCE.getClass().getSimpleName();
    }

    /** Whether the native system BLAS loaded. */
    public static boolean isNative() {
        return BLAS_INSTANCE instanceof NativeBLAS;
    }

    /**
     * Column sums of a row-major {@code a[m,n]} (leading dimension lda) added into
     * {@code y[n]}: {@code y += alpha·aᵀ·ones}. Column-major this is {@code y += alpha·A·ones}
     * with A the n×m view of the buffer.
     */
    public static void addColumnSums(int m, int n, float alpha, float[] a, int aOff, int lda, float[] y, int yOff) {
        if (m == 0 || n == 0) {
            return;
        }
        BLAS_INSTANCE.sgemv("N", n, m, alpha, a, aOff, lda, ones(m), 0, 1, 1f, y, yOff, 1);
    }

    /**
     * {@code Σ x²} over x[off, off+n): BLAS sdot on blocks of 4096 (float sums, vectorised),
     * the blocks added in double, so the error stays near float's epsilon at any length.
     */
    public static double sumSquares(int n, float[] x, int off) {
        double s = 0;
        for (int from = 0; from < n; from += 4096) {
            int len = Math.min(4096, n - from);
            s += BLAS_INSTANCE.sdot(len, x, off + from, 1, x, off + from, 1);
        }
        return s;
    }

    private static volatile float[] ones = new float[0];

    /** A vector of at least m ones; grows (rarely) and is shared, never written after creation. */
    private static float[] ones(int m) {
        float[] o = ones;
        if (o.length < m) {
            o = new float[Math.max(m, 2 * o.length)];
            java.util.Arrays.fill(o, 1f);
            ones = o;
        }
        return o;
    }

    /**
     * Row-major {@code C[m,n] = alpha·op(A)[m,k]·op(B)[k,n] + beta·C}. A row-major matrix read as
     * column-major is its transpose, so this is the column-major call {@code Cᵀ = op(B)ᵀ·op(A)ᵀ}
     * with the operands swapped and the transpose flags unchanged.
     */
    public static void sgemm(boolean transA, boolean transB, int m, int n, int k, float alpha,
                             float[] a, int aOff, int lda, float[] b, int bOff, int ldb, float beta,
                             float[] c, int cOff, int ldc) {
        if (m == 0 || n == 0) {
            return;
        }
        if (k == 0) {
            // BLAS leaves C untouched only when beta == 1; make k == 0 mean "scale C by beta".
            for (int r = 0; r < m; r++) {
                for (int j = 0; j < n; j++) {
                    c[cOff + r * ldc + j] = beta == 0f ? 0f : c[cOff + r * ldc + j] * beta;
                }
            }
            return;
        }
        BLAS_INSTANCE.sgemm(transB ? "T" : "N", transA ? "T" : "N", n, m, k, alpha, b, bOff, ldb, a, aOff, lda,
                beta, c, cOff, ldc);
    }
}
