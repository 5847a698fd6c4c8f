package io.roundhouse.kernels.cuda;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.Check;
import io.roundhouse.kernels.Philox;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.kernels.cpu.CpuElementwise;

/**
 * Dropout, jitter and the element-wise ops of the CUDA backend (kernels in {@code elementwise.cu}),
 * as {@link CpuElementwise} is the CPU's: masks and noise from Philox, the CPU's bit for bit.
 */
final class CudaElementwise {
    private final CudaBackend be;
    private final CudaDevice dev;

    CudaElementwise(CudaBackend be, CudaDevice dev) {
        this.be = be;
        this.dev = dev;
    }

    /** {@link Backend#dropoutForward} and its backward (the same mask). */
    void dropout(String op, Tensor out, Tensor in, float p, long seed, long stream, long firstElement) {
        Check.dropout(op, out, in, p, firstElement);
        if (p == 0f) {
            be.copy(out, in);
            return;
        }
        be.grid(op, "rh_dropout", in.size(), out, in, p, seed, stream, firstElement, (long) in.size());
    }

    /** {@link Backend#dropoutRowsForward} and its backward. */
    void dropoutRows(String op, Tensor out, Tensor in, Tensor rates, long seed, long stream, long first) {
        Check.dropoutRows(op, out, in, rates, first);
        float[] r = new float[rates.size()];
        be.read(rates, r);
        for (int i = 0; i < r.length; i++) {
            Check.rowRate(op, i, r[i]);
        }
        be.grid(op, "rh_dropout_rows", in.size(), out, in, rates, seed, stream, first, in.dim(0), in.rowSize());
    }

    void jitter(Tensor y, Tensor x, Tensor amplitude, long seed, long stream, long firstElement) {
        Check.jitter(y, x, amplitude, firstElement);
        be.grid("jitter", "rh_jitter", x.size(), y, x, amplitude, seed, stream, firstElement, x.dim(0), x.rowSize());
    }

    /** {@link Backend#multiply} ({@code add} = 0) and {@link Backend#multiplyAdd} (1). */
    void multiply(String op, Tensor y, Tensor a, Tensor b, int add) {
        boolean row = Check.multiply(op, y, a, b);
        be.grid(op, "rh_multiply", a.size(), y, a, b, (long) a.size(), Math.max(1, a.rowSize()), row ? 1 : 0, add);
    }

    void sumRowProducts(Tensor acc, Tensor a, Tensor b) {
        int cols = Check.sumRowProducts(acc, a, b);
        if (cols == 0) {
            return;
        }
        dev.bind();
        dev.launch("sumRowProducts", "rh_sum_row_products", (cols + 255) / 256, 1, 256, acc, a, b, a.dim(0), cols);
    }

    void scaleRows(Tensor t, Tensor s) {
        Check.shape("scaleRows", s, t.dim(0));
        be.grid("scaleRows", "rh_scale_rows", t.size(), t, s, t.dim(0), t.rowSize());
    }
}
