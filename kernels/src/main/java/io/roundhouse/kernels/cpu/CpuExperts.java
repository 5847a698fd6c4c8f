package io.roundhouse.kernels.cpu;

import static io.roundhouse.kernels.cpu.CpuBackend.f;
import static io.roundhouse.kernels.cpu.CpuBackend.gemmBias;
import static io.roundhouse.kernels.cpu.CpuBackend.gemmBiasBackward;
import static io.roundhouse.kernels.cpu.CpuBackend.o;

import io.roundhouse.kernels.Activation;
import io.roundhouse.kernels.Blas;
import io.roundhouse.kernels.Check;
import io.roundhouse.kernels.Precision;
import io.roundhouse.kernels.Tensor;

/**
 * The CPU backend's grouped expert FFN: {@link io.roundhouse.kernels.Backend#expertFfnForward}
 * and the two halves of its backward, one BLAS GEMM per expert group, at fp32 or on bf16-rounded
 * operands (the backend's rounding slots).
 */
final class CpuExperts {
    private final CpuBackend be;
    private final CpuActivationRows activations;

    CpuExperts(CpuBackend be, CpuActivationRows activations) {
        this.be = be;
        this.activations = activations;
    }

    void forward(Tensor y, Tensor a, Tensor h, Tensor x, Tensor w1, Tensor b1, Tensor w2,
                 Tensor b2, int[] offsets, Activation act, Precision p) {
        int e = w1.dim(0);
        int d = w1.dim(1);
        int f1 = w1.dim(2);
        int f = w2.dim(1);
        int m = Check.expertFfnForward(y, a, h, x, w1, w2, offsets, act);
        boolean bf16 = p == Precision.BF16;
        // The GEMMs' operands: the tensors themselves, or their bf16 roundings (h's once it exists).
        float[] xg = bf16 ? be.rounded(0, x.rows(m)) : f(x);
        float[] w1g = bf16 ? be.rounded(1, w1) : f(w1);
        float[] w2g = bf16 ? be.rounded(2, w2) : f(w2);
        int xgo = bf16 ? 0 : o(x);
        int w1go = bf16 ? 0 : o(w1);
        int w2go = bf16 ? 0 : o(w2);
        for (int ex = 0; ex < e; ex++) {
            int r0 = offsets[ex];
            int rows = offsets[ex + 1] - r0;
            if (rows == 0) {
                continue;
            }
            gemmBias(f(a), o(a) + r0 * f1, xg, xgo + r0 * d, w1g, w1go + ex * d * f1,
                    b1 == null ? null : f(b1), b1 == null ? 0 : o(b1) + ex * f1, rows, d, f1);
            activations.forward(f(h), o(h) + r0 * f, f(a), o(a) + r0 * f1, rows, f, act);
            // fp32 reads h in place; bf16 rounds this expert's rows (a view only then: one per expert per step)
            gemmBias(f(y), o(y) + r0 * d, bf16 ? be.rounded(3, h.rows(r0, rows)) : f(h), bf16 ? 0 : o(h) + r0 * f, w2g,
                    w2go + ex * f * d, b2 == null ? null : f(b2), b2 == null ? 0 : o(b2) + ex * d, rows, f, d);
        }
    }

    void backwardData(Tensor dx, Tensor dy, Tensor a, Tensor w1, Tensor w2, int[] offsets,
                      Activation act, Tensor scratchDh, Tensor scratchDa, Precision p) {
        int e = w1.dim(0);
        int d = w1.dim(1);
        int f1 = w1.dim(2);
        int f = w2.dim(1);
        int m = Check.expertFfnBackwardData(dx, dy, w1, w2, offsets, scratchDh, scratchDa);
        boolean bf16 = p == Precision.BF16;
        float[] dh = f(scratchDh);
        float[] da = f(scratchDa);
        // The GEMMs' operands at the precision: offsets into them are r0·width (+ the tensor's own).
        float[] dyg = bf16 ? be.rounded(0, dy.rows(m)) : f(dy);
        float[] w1g = bf16 ? be.rounded(3, w1) : f(w1);
        float[] w2g = bf16 ? be.rounded(4, w2) : f(w2);
        for (int ex = 0; ex < e; ex++) {
            int r0 = offsets[ex];
            int rows = offsets[ex + 1] - r0;
            if (rows == 0) {
                continue;
            }
            int dho = o(scratchDh) + r0 * f;
            int dao = o(scratchDa) + r0 * f1;
            Blas.sgemm(false, true, rows, f, d, 1f, dyg, (bf16 ? 0 : o(dy)) + r0 * d, d, w2g,
                    (bf16 ? 0 : o(w2)) + ex * f * d, d, 0f, dh, dho, f);
            activations.backward(da, dao, dh, dho, f(a), o(a) + r0 * f1, rows, f, act);
            float[] dag = bf16 ? be.rounded(5, scratchDa.rows(r0, rows)) : da;
            Blas.sgemm(false, true, rows, d, f1, 1f, dag, bf16 ? 0 : dao, f1, w1g,
                    (bf16 ? 0 : o(w1)) + ex * d * f1, f1, 0f, f(dx), o(dx) + r0 * d, d);
        }
    }

    void backwardWeights(Tensor dw1, Tensor db1, Tensor dw2, Tensor db2, Tensor dy, Tensor x,
                         Tensor h, int[] offsets, Tensor scratchDa, Precision p) {
        int e = dw1.dim(0);
        int d = dw1.dim(1);
        int f1 = dw1.dim(2);
        int f = dw2.dim(1);
        int m = Check.expertFfnBackwardWeights(dw1, dw2, dy, x, h, offsets, scratchDa);
        boolean bf16 = p == Precision.BF16;
        float[] da = f(scratchDa);
        float[] dyg = bf16 ? be.rounded(0, dy.rows(m)) : f(dy);
        float[] hg = bf16 ? be.rounded(1, h.rows(m)) : f(h);
        float[] xg = bf16 ? be.rounded(2, x.rows(m)) : f(x);
        for (int ex = 0; ex < e; ex++) {
            int r0 = offsets[ex];
            int rows = offsets[ex + 1] - r0;
            if (rows == 0) {
                continue;
            }
            int dao = o(scratchDa) + r0 * f1;
            gemmBiasBackward(null, 0, f(dw2), o(dw2) + ex * f * d, db2 == null ? null : f(db2),
                    db2 == null ? 0 : o(db2) + ex * d, f(dy), o(dy) + r0 * d, dyg, (bf16 ? 0 : o(dy)) + r0 * d,
                    hg, (bf16 ? 0 : o(h)) + r0 * f, null, 0, rows, f, d);
            float[] dag = bf16 ? be.rounded(5, scratchDa.rows(r0, rows)) : da;
            gemmBiasBackward(null, 0, f(dw1), o(dw1) + ex * d * f1, db1 == null ? null : f(db1),
                    db1 == null ? 0 : o(db1) + ex * f1, da, dao, dag, bf16 ? 0 : dao, xg,
                    (bf16 ? 0 : o(x)) + r0 * d, null, 0, rows, d, f1);
        }
    }
}
