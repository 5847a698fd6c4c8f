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
 * operands (each expert's slices rounded into the backend's rounding slots as its GEMMs need them).
 */
final class CpuExperts {
    private final CpuActivationRows activations;
    private final Operands operands;

    CpuExperts(CpuBackend be, CpuActivationRows activations) {
        this.activations = activations;
        this.operands = new Operands(be);
    }

    void forward(Tensor y, Tensor a, Tensor h, Tensor x, Tensor w1, Tensor b1, Tensor w2,
                 Tensor b2, int[] offsets, Activation act, Precision p) {
        int e = w1.dim(0);
        int d = w1.dim(1);
        int f1 = w1.dim(2);
        int f = w2.dim(1);
        Check.expertFfnForward(y, a, h, x, w1, w2, offsets, act);
        Operands g = operands.at(p);
        for (int ex = 0; ex < e; ex++) {
            int r0 = offsets[ex];
            int rows = offsets[ex + 1] - r0;
            if (rows == 0) {
                continue;
            }
            g.take(0, x, r0 * d, rows * d);
            g.take(1, w1, ex * d * f1, d * f1);
            gemmBias(f(a), o(a) + r0 * f1, g.arrays[0], g.offs[0], g.arrays[1], g.offs[1],
                    b1 == null ? null : f(b1), b1 == null ? 0 : o(b1) + ex * f1, rows, d, f1);
            activations.forward(f(h), o(h) + r0 * f, f(a), o(a) + r0 * f1, rows, f, act);
            g.take(2, h, r0 * f, rows * f);
            g.take(3, w2, ex * f * d, f * d);
            gemmBias(f(y), o(y) + r0 * d, g.arrays[2], g.offs[2], g.arrays[3], g.offs[3],
                    b2 == null ? null : f(b2), b2 == null ? 0 : o(b2) + ex * d, rows, f, d);
        }
    }

    void backwardData(Tensor dx, Tensor dy, Tensor a, Tensor w1, Tensor w2, int[] offsets,
                      Activation act, Tensor scratchDh, Tensor scratchDa, Precision p) {
        int e = w1.dim(0);
        int d = w1.dim(1);
        int f1 = w1.dim(2);
        int f = w2.dim(1);
        Check.expertFfnBackwardData(dx, dy, w1, w2, offsets, scratchDh, scratchDa);
        Operands g = operands.at(p);
        float[] dh = f(scratchDh);
        float[] da = f(scratchDa);
        for (int ex = 0; ex < e; ex++) {
            int r0 = offsets[ex];
            int rows = offsets[ex + 1] - r0;
            if (rows == 0) {
                continue;
            }
            int dho = o(scratchDh) + r0 * f;
            int dao = o(scratchDa) + r0 * f1;
            g.take(0, dy, r0 * d, rows * d);
            g.take(1, w2, ex * f * d, f * d);
            Blas.sgemm(false, true, rows, f, d, 1f, g.arrays[0], g.offs[0], d, g.arrays[1], g.offs[1], d, 0f, dh,
                    dho, f);
            activations.backward(da, dao, dh, dho, f(a), o(a) + r0 * f1, rows, f, act);
            g.take(2, scratchDa, r0 * f1, rows * f1);
            g.take(3, w1, ex * d * f1, d * f1);
            Blas.sgemm(false, true, rows, d, f1, 1f, g.arrays[2], g.offs[2], f1, g.arrays[3], g.offs[3], f1, 0f,
                    f(dx), o(dx) + r0 * d, d);
        }
    }

    void backwardWeights(Tensor dw1, Tensor db1, Tensor dw2, Tensor db2, Tensor dy, Tensor x,
                         Tensor h, int[] offsets, Tensor scratchDa, Precision p) {
        int e = dw1.dim(0);
        int d = dw1.dim(1);
        int f1 = dw1.dim(2);
        int f = dw2.dim(1);
        Check.expertFfnBackwardWeights(dw1, dw2, dy, x, h, offsets, scratchDa);
        Operands g = operands.at(p);
        for (int ex = 0; ex < e; ex++) {
            int r0 = offsets[ex];
            int rows = offsets[ex + 1] - r0;
            if (rows == 0) {
                continue;
            }
            int dao = o(scratchDa) + r0 * f1;
            g.take(0, dy, r0 * d, rows * d);
            g.take(1, h, r0 * f, rows * f);
            gemmBiasBackward(null, 0, f(dw2), o(dw2) + ex * f * d, db2 == null ? null : f(db2),
                    db2 == null ? 0 : o(db2) + ex * d, f(dy), o(dy) + r0 * d, g.arrays[0], g.offs[0],
                    g.arrays[1], g.offs[1], null, 0, rows, f, d);
            g.take(2, scratchDa, r0 * f1, rows * f1);
            g.take(3, x, r0 * d, rows * d);
            gemmBiasBackward(null, 0, f(dw1), o(dw1) + ex * d * f1, db1 == null ? null : f(db1),
                    db1 == null ? 0 : o(db1) + ex * f1, f(scratchDa), dao, g.arrays[2], g.offs[2],
                    g.arrays[3], g.offs[3], null, 0, rows, d, f1);
        }
    }

    /**
     * One expert's GEMM operands: at fp32 the tensors themselves, at bf16 the slice an expert's GEMM
     * reads rounded into the backend's slot (each expert's rows and weights only: a call for one
     * group, as the MoE layer's pipeline makes, rounds nothing of the others).
     */
    private static final class Operands {
        final float[][] arrays = new float[4][];
        final int[] offs = new int[4];
        private final CpuBackend be;
        private boolean bf16;

        Operands(CpuBackend be) {
            this.be = be;
        }

        /** These operands for a call at precision {@code p} (one per backend: its calls come one at a time). */
        Operands at(Precision p) {
            bf16 = p == Precision.BF16;
            return this;
        }

        /** Operand {@code i}: {@code n} values of {@code t} from element {@code from}. */
        void take(int i, Tensor t, int from, int n) {
            if (bf16) {
                arrays[i] = be.rounded(i, f(t), o(t) + from, n);
                offs[i] = 0;
            } else {
                arrays[i] = f(t);
                offs[i] = o(t) + from;
            }
        }
    }
}
