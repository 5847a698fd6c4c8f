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

    private CudaTensor(CudaTensor parent, int rows, CUdeviceptr base, long byteOffset) {
        super(parent, rows);
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
    protected Tensor makeRows(int from, int n) {
        return new CudaTensor(this, n, base, byteOffset + 4L * from * rowSize());
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
