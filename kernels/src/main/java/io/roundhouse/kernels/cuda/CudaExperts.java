package io.roundhouse.kernels.cuda;

import io.roundhouse.kernels.Activation;
import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.Check;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Precision;
import io.roundhouse.kernels.Tensor;

/**
 * The CUDA backend's grouped expert FFN: each of its GEMMs is one launch over every expert's rows
 * ({@code blockIdx.z} = expert, variable group sizes from the offsets, empty groups allowed), as are
 * the weight gradients; the biases and their gradients go by group. Kernels in {@code dense.cu} and
 * {@code gemm_bf16.cu} (bf16).
 */
final class CudaExperts {
    private final CudaBackend be;
    private final CudaDevice dev;
    private CudaTensor offsetsDev;  // the last groups' offsets, [≥ E+1]

    CudaExperts(CudaBackend be, CudaDevice dev) {
        this.be = be;
        this.dev = dev;
    }

    /** The groups' offsets on the device; returns the largest group's rows. */
    private int uploadGroups(int[] offsets) {
        if (offsetsDev == null || offsetsDev.size() < offsets.length) {
            offsetsDev = (CudaTensor) be.allocate("expert.offsets", DType.INT32, Math.max(offsets.length, 64));
        }
        be.write(offsetsDev.rows(0, offsets.length), offsets);
        int most = 0;
        for (int g = 0; g + 1 < offsets.length; g++) {
            most = Math.max(most, offsets[g + 1] - offsets[g]);
        }
        return most;
    }

    /** C_g (=|+=) A_g·op(B_g) over every group in one launch; A, C: rows grouped by offsets. */
    private void groupedRows(String op, Precision p, int groups, int most, boolean transB, int n, int k, Tensor a,
                             Tensor b, float beta, Tensor cc) {
        if (most == 0 || n == 0) {
            return;
        }
        int tile = GemmKernel.of(p).tile;
        dev.bind();
        dev.launchGrid(op, p == Precision.BF16 ? "rh_gemm_bf16_grouped_rows" : "rh_sgemm_grouped_rows",
                (n + tile - 1) / tile, (most + tile - 1) / tile, groups, 256, transB ? 1 : 0, n, k, 1f, a, k, b,
                transB ? k : n, (long) k * n, beta, cc, n, offsetsDev);
    }

    /** C_g += A_gᵀ·B_g over every group in one launch (the weight gradients). */
    private void groupedWeights(String op, Precision p, int groups, int m, int n, Tensor a, Tensor b, Tensor cc) {
        int tile = GemmKernel.of(p).tile;
        dev.bind();
        dev.launchGrid(op, p == Precision.BF16 ? "rh_gemm_bf16_grouped_weights" : "rh_sgemm_grouped_weights",
                (n + tile - 1) / tile, (m + tile - 1) / tile, groups, 256, m, n, a, m, b, n, cc, (long) m * n,
                offsetsDev);
    }

    /** {@code offsets} less their first entry: the same groups counted from their first row. */
    private static int[] shifted(int[] offsets) {
        int[] s = new int[offsets.length];
        for (int g = 0; g < s.length; g++) {
            s[g] = offsets[g] - offsets[0];
        }
        return s;
    }

    /** {@link Backend#expertFfnForward}: a = x·W1_g + b1_g, h = act(a), y = h·W2_g + b2_g. */
    void forward(Tensor y, Tensor a, Tensor h, Tensor x, Tensor w1, Tensor b1, Tensor w2, Tensor b2, int[] offsets,
                 Activation act, Precision p) {
        int e = w1.dim(0);
        int d = w1.dim(1);
        int f1 = w1.dim(2);
        int f = w2.dim(1);
        int m = Check.expertFfnForward(y, a, h, x, w1, w2, offsets, act);
        if (offsets[0] > 0) {
            // groups from row r0: the same op on views from there (the grouped kernels count rows from 0)
            int r0 = offsets[0];
            forward(y.rows(r0, m - r0), a.rows(r0, m - r0), h.rows(r0, m - r0), x.rows(r0, m - r0), w1, b1, w2, b2,
                    shifted(offsets), act, p);
            return;
        }
        if (m == 0) {
            return;
        }
        int most = uploadGroups(offsets);
        if (b1 != null) {
            be.grid("expertFfnForward bias", "rh_bias_rows_grouped", (long) m * f1, a, b1, offsetsDev, e, f1);
        }
        groupedRows("expertFfnForward x·W1", p, e, most, false, f1, d, x, w1, b1 == null ? 0f : 1f, a);
        be.activationForward(h.rows(m), a.rows(m), act);
        if (b2 != null) {
            be.grid("expertFfnForward bias", "rh_bias_rows_grouped", (long) m * d, y, b2, offsetsDev, e, d);
        }
        groupedRows("expertFfnForward h·W2", p, e, most, false, d, f, h, w2, b2 == null ? 0f : 1f, y);
    }

    /** {@link Backend#expertFfnBackwardData}. */
    void backwardData(Tensor dx, Tensor dy, Tensor a, Tensor w1, Tensor w2, int[] offsets, Activation act,
                      Tensor scratchDh, Tensor scratchDa, Precision p) {
        int e = w1.dim(0);
        int d = w1.dim(1);
        int f1 = w1.dim(2);
        int f = w2.dim(1);
        int m = Check.expertFfnBackwardData(dx, dy, w1, w2, offsets, scratchDh, scratchDa);
        if (offsets[0] > 0) {
            int r0 = offsets[0];
            backwardData(dx.rows(r0, m - r0), dy.rows(r0, m - r0), a.rows(r0, m - r0), w1, w2, shifted(offsets), act,
                    scratchDh.rows(r0, m - r0), scratchDa.rows(r0, m - r0), p);
            return;
        }
        if (m == 0) {
            return;
        }
        int most = uploadGroups(offsets);
        groupedRows("expertFfnBackward dh", p, e, most, true, f, d, dy, w2, 0f, scratchDh);
        be.activationBackward(scratchDa.rows(m), scratchDh.rows(m), a.rows(m), act);
        groupedRows("expertFfnBackward dx", p, e, most, true, d, f1, scratchDa, w1, 0f, dx);
    }

    /** {@link Backend#expertFfnBackwardWeights}. */
    void backwardWeights(Tensor dw1, Tensor db1, Tensor dw2, Tensor db2, Tensor dy, Tensor x, Tensor h,
                         int[] offsets, Tensor scratchDa, Precision p) {
        int e = dw1.dim(0);
        int d = dw1.dim(1);
        int f1 = dw1.dim(2);
        int f = dw2.dim(1);
        int m = Check.expertFfnBackwardWeights(dw1, dw2, dy, x, h, offsets, scratchDa);
        if (m == 0) {
            return;
        }
        uploadGroups(offsets);
        groupedWeights("expertFfnBackward dW2", p, e, f, d, h, dy, dw2);
        if (db2 != null) {
            dev.launchGrid("expertFfnBackward db2", "rh_column_sums_grouped", (d + 255) / 256, e, 1, 256, db2, dy,
                    offsetsDev, d);
        }
        groupedWeights("expertFfnBackward dW1", p, e, d, f1, x, scratchDa, dw1);
        if (db1 != null) {
            dev.launchGrid("expertFfnBackward db1", "rh_column_sums_grouped", (f1 + 255) / 256, e, 1, 256, db1,
                    scratchDa, offsetsDev, f1);
        }
    }
}
