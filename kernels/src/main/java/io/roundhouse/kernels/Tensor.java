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
    public final Tensor rows(int n) {
        return rows(0, n);
    }

    /**
     * A view of rows {@code [from, from + n)} sharing this tensor's storage. Views are made once
     * and returned again for the same rows (a view is immutable, so sharing it is safe): a step asks
     * for the same views of its tensors every step, and the leading-row views of buffers whose row
     * count changes from step to step (routed rows) are kept per count, so a steady-state step makes
     * none. Any thread may ask; one that reads a slot another is filling only makes a view of its own.
     */
    public final Tensor rows(int from, int n) {
        if (from < 0 || n < 0 || from + n > dim(0)) {
            throw new IllegalArgumentException("rows [" + from + ", " + (from + n) + ") out of range for " + this);
        }
        if (from == 0 && n == dim(0)) {
            return this;
        }
        if (from == 0 && dim(0) <= MAX_ROWS_BY_COUNT) {
            Tensor[] byCount = leadingViews;
            if (byCount == null) {
                byCount = new Tensor[dim(0)];
                leadingViews = byCount;
            }
            Tensor v = byCount[n];
            if (v == null) {
                v = makeRows(0, n);
                byCount[n] = v;
            }
            return v;
        }
        RowView[] recent = otherViews;
        if (recent == null) {
            recent = new RowView[RECENT_VIEWS];
            otherViews = recent;
        }
        for (RowView v : recent) {
            if (v != null && v.from == from && v.n == n) {
                return v.view;
            }
        }
        RowView v = new RowView(from, n, makeRows(from, n));
        recent[nextView] = v;
        nextView = (nextView + 1) % RECENT_VIEWS;
        return v.view;
    }

    /** Tensors of at most this many rows keep one view per leading-row count (a reference per row). */
    private static final int MAX_ROWS_BY_COUNT = 1 << 14;
    /** How many views of other row ranges a tensor keeps (some are asked at two or three offsets in turn). */
    private static final int RECENT_VIEWS = 4;

    /** A view and the rows it covers (immutable: a racing reader sees all of it or none). */
    private record RowView(int from, int n, Tensor view) {
    }

    private Tensor[] leadingViews;   // [dim(0)]: the view of rows [0, n) at n, made on first use
    private RowView[] otherViews;    // the last few views of other ranges
    private int nextView;

    /** A new view of rows {@code [from, from + n)} (in range) sharing this tensor's storage. */
    protected abstract Tensor makeRows(int from, int n);

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

    /**
     * For a view of {@code rows} leading rows of {@code parent}'s shape (in range): its shape is
     * made once here, not copied again.
     */
    protected Tensor(Tensor parent, int rows) {
        this.name = parent.name;
        this.dtype = parent.dtype;
        this.shape = parent.shape.clone();
        this.shape[0] = rows;
        this.size = rows * parent.rowSize();
    }

    @Override
    public String toString() {
        return name + Arrays.toString(shape) + ":" + dtype;
    }
}
