package io.roundhouse.kernels;

import java.util.Arrays;

/**
 * A dense, row-major tensor owned by one {@link Backend}. Where its elements live (a Java array, a
 * device buffer) is the backend's business: model code only passes tensors to backend ops and moves
 * data in and out with {@link Backend#write}/{@link Backend#read}.
 *
 * <p>{@link #rows(int)} gives a view of the leading rows (dimension 0), which is how a buffer
 * allocated once for the largest batch serves a smaller one: the view is a small object sharing
 * the buffer's storage, not a new buffer.
 */
public abstract class Tensor {
    private final String name;
    private final DType dtype;
    private final int[] shape;
    private final int size;

    protected Tensor(String name, DType dtype, int[] shape) {
        if (shape.length == 0) {
            throw new IllegalArgumentException("tensor '" + name + "' needs at least one dimension");
        }
        long n = 1;
        for (int d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException(
                        "tensor '" + name + "' has a negative dimension: " + Arrays.toString(shape));
            }
            n *= d;
        }
        if (n > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("tensor '" + name + "' is too large: " + Arrays.toString(shape));
        }
        this.name = name;
        this.dtype = dtype;
        this.shape = shape.clone();
        this.size = (int) n;
    }

    public final String name() {
        return name;
    }

    public final DType dtype() {
        return dtype;
    }

    /** Number of dimensions. */
    public final int rank() {
        return shape.length;
    }

    public final int dim(int i) {
        return shape[i];
    }

    public final int[] shape() {
        return shape.clone();
    }

    /** Total number of elements. */
    public final int size() {
        return size;
    }

    /** Elements per leading row: {@code size / dim(0)} (1 for a vector). */
    public final int rowSize() {
        int r = 1;
        for (int i = 1; i < shape.length; i++) {
            r *= shape[i];
        }
        return r;
    }

    /** A view of rows {@code [0, n)} sharing this tensor's storage. */
    public abstract Tensor rows(int n);

    /** A view of rows {@code [from, from + n)} sharing this tensor's storage. */
    public abstract Tensor rows(int from, int n);

    /**
     * The same elements with another shape of the same size (e.g. expert e's [D, F] slice of an
     * [E, D, F] weight: {@code w.rows(e, 1).view(D, F)}).
     */
    public abstract Tensor view(int... shape);

    protected final void checkView(int[] newShape) {
        long n = 1;
        for (int d : newShape) {
            n *= d;
        }
        if (n != size) {
            throw new IllegalArgumentException("cannot view " + this + " as " + Arrays.toString(newShape)
                    + ": the sizes differ");
        }
    }

    protected final int[] shapeWithRows(int n) {
        int[] s = shape.clone();
        s[0] = n;
        return s;
    }

    @Override
    public String toString() {
        return name + Arrays.toString(shape) + ":" + dtype;
    }
}
