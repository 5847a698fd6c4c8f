package io.roundhouse.kernels.cuda;

import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Tensor;
import jcuda.driver.CUdeviceptr;

/** A tensor in GPU memory: {@code base} (an arena block) plus a byte offset; views share the block. */
final class CudaTensor extends Tensor {
    private final CUdeviceptr base;
    private final long byteOffset;

    CudaTensor(String name, DType dtype, int[] shape, CUdeviceptr base, long byteOffset) {
        super(name, dtype, shape);
        this.base = base;
        this.byteOffset = byteOffset;
    }

    /** The arena block this tensor lies in (its allocation). */
    CUdeviceptr base() {
        return base;
    }

    /** Where element 0 lies in {@link #base()}, in bytes. */
    long byteOffset() {
        return byteOffset;
    }

    /** The device address of element 0. */
    CUdeviceptr ptr() {
        return byteOffset == 0 ? base : base.withByteOffset(byteOffset);
    }

    @Override
    public Tensor rows(int n) {
        return rows(0, n);
    }

    // The last row view made, returned again for the same rows (as CpuTensor does): a view is
    // immutable and says itself which rows it covers, so a stale read only makes a new one.
    private CudaTensor lastView;

    @Override
    public Tensor rows(int from, int n) {
        if (from < 0 || n < 0 || from + n > dim(0)) {
            throw new IllegalArgumentException("rows [" + from + ", " + (from + n) + ") out of range for " + this);
        }
        long start = byteOffset + 4L * from * rowSize();
        CudaTensor v = lastView;
        if (v != null && v.byteOffset == start && v.dim(0) == n) {
            return v;
        }
        v = new CudaTensor(name(), dtype(), shapeWithRows(n), base, start);
        lastView = v;
        return v;
    }

    @Override
    public Tensor view(int... shape) {
        checkView(shape);
        return new CudaTensor(name(), dtype(), shape, base, byteOffset);
    }

    /** A view of {@code shape} starting {@code elements} elements in (an expert's slice of a weight). */
    CudaTensor view(String viewName, long elements, int... shape) {
        return new CudaTensor(viewName, dtype(), shape, base, byteOffset + 4L * elements);
    }
}
