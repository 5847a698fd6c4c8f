package io.roundhouse.kernels.cpu;

import static io.roundhouse.kernels.cpu.CpuBackend.f;
import static io.roundhouse.kernels.cpu.CpuBackend.i;
import static io.roundhouse.kernels.cpu.CpuBackend.o;

import io.roundhouse.kernels.Check;
import io.roundhouse.kernels.Tensor;

/**
 * The CPU backend's permute and un-permute (legend as in {@link io.roundhouse.kernels.Backend}),
 * their rows split into chunks on the backend's threads ({@link CpuThreads}): each row is computed
 * as one thread computes it, so the bits do not depend on the thread count. One per backend, used
 * by one calling thread: a split call's arguments sit in fields that the chunks' bodies, made
 * once, read, so a call allocates nothing.
 */
final class CpuPermutes {
    // The call being split: its tensors and sizes (cleared when it returns).
    private Tensor out;
    private Tensor in;
    private Tensor index;      // rowToken or copyRow
    private Tensor gates;
    private Tensor dGates;
    private Tensor yp;
    private int m;
    private int d;
    private int k;
    private final CpuThreads.Rows permuteChunk = (c, first, end) -> permuteRows(out, in, index, first, end, d);
    private final CpuThreads.Rows addCopiesChunk = (c, first, end) -> addCopies(out, in, index, first, end, m, d);
    private final CpuThreads.Rows unpermuteChunk = (c, first, end) -> unpermuteRows(out, in, index, gates, first, end,
            d, k);
    private final CpuThreads.Rows unpermuteBackwardChunk = (c, first, end) -> unpermuteBackwardRows(out, dGates, in,
            yp, index, gates, first, end, d, k);

    void permuteForward(Tensor xp, Tensor x, Tensor rowToken, int m) {
        int d = x.rowSize();
        Check.atLeastRows("permuteForward", xp, m, d);
        if (CpuThreads.chunks(m, d) == 1) {
            permuteRows(xp, x, rowToken, 0, m, d);
            return;
        }
        set(xp, x, rowToken, null, null, null, m, d, 0);
        try {
            CpuThreads.rows(m, d, permuteChunk);
        } finally {
            clear();
        }
    }

    private static void permuteRows(Tensor xp, Tensor x, Tensor rowToken, int first, int end, int d) {
        float[] src = f(x);
        float[] dst = f(xp);
        int[] tok = i(rowToken);
        for (int r = first; r < end; r++) {
            System.arraycopy(src, o(x) + tok[o(rowToken) + r] * d, dst, o(xp) + r * d, d);
        }
    }

    void permuteBackward(Tensor dx, Tensor dxp, Tensor rowToken, int m) {
        int d = dx.rowSize();
        Check.atLeastRows("permuteBackward", dxp, m, d);
        java.util.Arrays.fill(f(dx), o(dx), o(dx) + dx.size(), 0f);
        int n = dx.dim(0);
        // Each chunk owns a range of tokens and adds their copies in row order, as one thread would.
        long perToken = (long) m * d / Math.max(1, n);
        if (CpuThreads.chunks(n, perToken) == 1) {
            addCopies(dx, dxp, rowToken, 0, n, m, d);
            return;
        }
        set(dx, dxp, rowToken, null, null, null, m, d, 0);
        try {
            CpuThreads.rows(n, perToken, addCopiesChunk);
        } finally {
            clear();
        }
    }

    /** Adds to tokens [first, end) their copies, in row order. */
    private static void addCopies(Tensor dx, Tensor dxp, Tensor rowToken, int first, int end, int m, int d) {
        float[] dst = f(dx);
        float[] src = f(dxp);
        int[] tok = i(rowToken);
        for (int r = 0; r < m; r++) {
            int t = tok[o(rowToken) + r];
            if (t < first || t >= end) {
                continue;
            }
            int to = o(dx) + t * d;
            int so = o(dxp) + r * d;
            for (int j = 0; j < d; j++) {
                dst[to + j] += src[so + j];
            }
        }
    }

    void unpermuteForward(Tensor y, Tensor yp, Tensor copyRow, Tensor gates) {
        int n = y.dim(0);
        int d = y.rowSize();
        int k = copyRow.dim(1);
        Check.shape("unpermuteForward", copyRow, n, k);
        java.util.Arrays.fill(f(y), o(y), o(y) + y.size(), 0f);
        if (CpuThreads.chunks(n, (long) k * d) == 1) {
            unpermuteRows(y, yp, copyRow, gates, 0, n, d, k);
            return;
        }
        set(y, yp, copyRow, gates, null, null, 0, d, k);
        try {
            CpuThreads.rows(n, (long) k * d, unpermuteChunk);
        } finally {
            clear();
        }
    }

    private static void unpermuteRows(Tensor y, Tensor yp, Tensor copyRow, Tensor gates, int first, int end, int d,
                                      int k) {
        float[] ya = f(y);
        float[] src = f(yp);
        int[] rows = i(copyRow);
        for (int r = first; r < end; r++) {
            int yr = o(y) + r * d;
            for (int s = 0; s < k; s++) {
                int row = rows[o(copyRow) + r * k + s];
                if (row < 0) {
                    continue;
                }
                float w = gates == null ? 1f : f(gates)[o(gates) + r * k + s];
                int so = o(yp) + row * d;
                for (int j = 0; j < d; j++) {
                    ya[yr + j] += w * src[so + j];
                }
            }
        }
    }

    void unpermuteBackward(Tensor dyp, Tensor dGates, Tensor dy, Tensor yp, Tensor copyRow, Tensor gates) {
        int n = dy.dim(0);
        int d = dy.rowSize();
        int k = copyRow.dim(1);
        Check.shape("unpermuteBackward", copyRow, n, k);
        if (CpuThreads.chunks(n, 2L * k * d) == 1) {
            unpermuteBackwardRows(dyp, dGates, dy, yp, copyRow, gates, 0, n, d, k);
            return;
        }
        set(dyp, dy, copyRow, gates, dGates, yp, 0, d, k);
        try {
            CpuThreads.rows(n, 2L * k * d, unpermuteBackwardChunk);
        } finally {
            clear();
        }
    }

    private static void unpermuteBackwardRows(Tensor dyp, Tensor dGates, Tensor dy, Tensor yp, Tensor copyRow,
                                              Tensor gates, int first, int end, int d, int k) {
        float[] dst = f(dyp);
        float[] dya = f(dy);
        float[] ypa = f(yp);
        int[] rows = i(copyRow);
        for (int r = first; r < end; r++) {
            int dyr = o(dy) + r * d;
            for (int s = 0; s < k; s++) {
                int c = r * k + s;
                int row = rows[o(copyRow) + c];
                if (row < 0) {
                    if (dGates != null) {
                        f(dGates)[o(dGates) + c] = 0f;
                    }
                    continue;
                }
                float w = gates == null ? 1f : f(gates)[o(gates) + c];
                int ro = o(dyp) + row * d;
                int yo = o(yp) + row * d;
                double dot = 0;
                for (int j = 0; j < d; j++) {
                    dst[ro + j] = w * dya[dyr + j];
                    dot += dya[dyr + j] * ypa[yo + j];
                }
                if (dGates != null) {
                    f(dGates)[o(dGates) + c] = (float) dot;
                }
            }
        }
    }

    private void set(Tensor out, Tensor in, Tensor index, Tensor gates, Tensor dGates, Tensor yp, int m, int d, int k) {
        this.out = out;
        this.in = in;
        this.index = index;
        this.gates = gates;
        this.dGates = dGates;
        this.yp = yp;
        this.m = m;
        this.d = d;
        this.k = k;
    }

    private void clear() {
        set(null, null, null, null, null, null, 0, 0, 0);
    }
}
