package io.roundhouse.worker.data;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Philox;
import io.roundhouse.kernels.Tensor;
import java.util.SplittableRandom;

/**
 * Moves batches of a dataset into tensors: a seeded shuffle per epoch (the order is a pure function
 * of seed and epoch), features as the dataset gives them (images normalised). Staging buffers are
 * allocated once.
 */
public final class Batcher implements BatchSource {
    private final Backend be;
    private final LabeledData data;
    private final int[] order;
    private final float[] hostX;
    private final int[] hostY;
    private final Tensor x;  // [maxN, features]
    private final Tensor y;  // [maxN] int
    private final long seed;

    public Batcher(Backend be, LabeledData data, int maxN, long seed) {
        this.be = be;
        this.data = data;
        this.seed = seed;
        this.order = new int[data.size()];
        this.hostX = new float[maxN * data.features()];
        this.hostY = new int[maxN];
        this.x = be.allocate(data.name() + ".x", DType.FLOAT32, maxN, data.features());
        this.y = be.allocate(data.name() + ".y", DType.INT32, maxN);
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
    }

    /** A seeded permutation of [0, n) (Fisher–Yates): the train/validation split's order. */
    public static int[] permutation(int n, long seed) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) {
            p[i] = i;
        }
        SplittableRandom r = new SplittableRandom(seed ^ 0x5DEECE66DL);
        for (int i = n - 1; i > 0; i--) {
            int j = r.nextInt(i + 1);
            int t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        return p;
    }

    /** Shuffles for {@code epoch} (Fisher–Yates from a generator seeded by seed and epoch). */
    @Override
    public void shuffle(int epoch) {
        shuffle(order, seed, epoch);
    }

    /** {@code order} = the permutation of epoch {@code epoch} under {@code seed}. */
    static void shuffle(int[] order, long seed, int epoch) {
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        SplittableRandom r = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + epoch);
        for (int i = order.length - 1; i > 0; i--) {
            int j = r.nextInt(i + 1);
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
    }

    /** Loads examples {@code order[from, from+n)} into {@link #x()} and {@link #y()} (rows [0, n)). */
    @Override
    public void load(int from, int n) {
        int f = data.features();
        for (int r = 0; r < n; r++) {
            int src = order[from + r];
            data.features(src, hostX, r * f);
            hostY[r] = data.label(src);
        }
        be.write(x.rows(n), hostX);
        be.write(y.rows(n), hostY);
    }

    /**
     * Shifts each loaded training image r by {@code (dx, dy)}, each uniform in {@code [−k_r, k_r]}
     * with {@code k_r = shifts[r]} (0: unchanged), drawn from Philox keyed by (seed, stream, the
     * example's global index), the border filled with the background; then writes the batch again.
     * Workers holding rows of one global batch shift each example as one worker would.
     *
     * @param firstExample the global index of row 0
     */
    public void shift(int n, int[] shifts, long seed, long stream, long firstExample) {
        int side = data.imageSide();
        if (side == 0) {
            throw new IllegalStateException(data.name() + ": augment.shift needs square images, but the examples have "
                    + data.features() + " features");
        }
        int f = data.features();
        float fill = data.background();
        float[] row = new float[f];
        for (int r = 0; r < n; r++) {
            int k = shifts[r];
            if (k <= 0) {
                continue;
            }
            long g = (firstExample + r) * 2;
            int dx = (int) (Philox.uniform(seed, stream, g) * (2 * k + 1)) - k;
            int dy = (int) (Philox.uniform(seed, stream, g + 1) * (2 * k + 1)) - k;
            System.arraycopy(hostX, r * f, row, 0, f);
            for (int y = 0; y < side; y++) {
                int sy = y - dy;
                for (int x = 0; x < side; x++) {
                    int sx = x - dx;
                    hostX[r * f + y * side + x] = sy >= 0 && sy < side && sx >= 0 && sx < side ? row[sy * side + sx]
                            : fill;
                }
            }
        }
        be.write(x.rows(n), hostX);
    }

    public Tensor x() {
        return x;
    }

    public Tensor y() {
        return y;
    }

    /** Labels of the last loaded batch, on the host. */
    public int[] hostLabels() {
        return hostY;
    }

    @Override
    public int size() {
        return data.size();
    }

    @Override
    public Tensor inputs() {
        return x;
    }

    @Override
    public Tensor targets() {
        return y;
    }

    @Override
    public int[] hostTargets() {
        return hostY;
    }
}
