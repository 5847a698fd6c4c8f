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
    public Tensor rows(int n) {
        return rows(0, n);
    }

    @Override
    public Tensor view(int... shape) {
        checkView(shape);
        return new CpuTensor(name(), dtype(), shape, f, i, off);
    }

    // The last few row views made, returned again for the same rows: a step asks for the same views
    // of its tensors every time (a view is immutable, so sharing it is safe), some tensors at two or
    // three row counts or offsets in turn. Each view says which rows it covers, so a thread that
    // reads a stale slot only makes a new view.
    private final CpuTensor[] views = new CpuTensor[4];
    private int nextView;

    @Override
    public Tensor rows(int from, int n) {
        if (from < 0 || n < 0 || from + n > dim(0)) {
            throw new IllegalArgumentException("rows [" + from + ", " + (from + n) + ") out of range for " + this);
        }
        int start = off + from * rowSize();
        for (CpuTensor v : views) {
            if (v != null && v.off == start && v.dim(0) == n) {
                return v;
            }
        }
        CpuTensor v;
        v = new CpuTensor(name(), dtype(), shapeWithRows(n), f, i, start);
        views[nextView] = v;
        nextView = (nextView + 1) & 3;
        return v;
    }
}
