package io.roundhouse.kernels.cpu;

import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Tensor;

/** A tensor in a Java array: {@code f} (FLOAT32) or {@code i} (INT32), starting at {@code off}. */
final class CpuTensor extends Tensor {
    final float[] f;
    final int[] i;
    final int off;

    CpuTensor(String name, DType dtype, int[] shape, float[] f, int[] i, int off) {
        super(name, dtype, shape);
        this.f = f;
        this.i = i;
        this.off = off;
    }

    @Override
    public Tensor view(int... shape) {
        checkView(shape);
        return new CpuTensor(name(), dtype(), shape, f, i, off);
    }

    private CpuTensor(CpuTensor parent, int rows, int off) {
        super(parent, rows);
        this.f = parent.f;
        this.i = parent.i;
        this.off = off;
    }

    @Override
    protected Tensor makeRows(int from, int n) {
        return new CpuTensor(this, n, off + from * rowSize());
    }
}
