package io.roundhouse.kernels;

/**
 * Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): a
 * counter-based generator, so the random number for element i of stream s under seed k is a pure
 * function of (k, s, i). Any backend, thread or worker reproduces it without shared state, which
 * is what lets dropout masks and STN perturbations be recomputed instead of stored or sent.
 *
 * <p>Layout: key = (seed low, seed high); counter = (i/4 low, i/4 high, stream low, stream high);
 * element i takes output word i mod 4. A CUDA kernel must use exactly this layout.
 */
public final class Philox {
    private static final int M0 = 0xD2511F53;
    private static final int M1 = 0xCD9E8D57;
    private static final int W0 = 0x9E3779B9;
    private static final int W1 = 0xBB67AE85;

    private Philox() {
    }

    /** The raw block: 4 output words for counter c[0..3] under key k0,k1 (written into out). */
    public static void block(int c0, int c1, int c2, int c3, int k0, int k1, int[] out) {
        for (int r = 0; r < 10; r++) {
            if (r > 0) {
                k0 += W0;
                k1 += W1;
            }
            long p0 = (M0 & 0xFFFFFFFFL) * (c0 & 0xFFFFFFFFL);
            long p1 = (M1 & 0xFFFFFFFFL) * (c2 & 0xFFFFFFFFL);
            int hi0 = (int) (p0 >>> 32);
            int lo0 = (int) p0;
            int hi1 = (int) (p1 >>> 32);
            int lo1 = (int) p1;
            c0 = hi1 ^ c1 ^ k0;
            c1 = lo1;
            c2 = hi0 ^ c3 ^ k1;
            c3 = lo0;
        }
        out[0] = c0;
        out[1] = c1;
        out[2] = c2;
        out[3] = c3;
    }

    /** Uniform in [0, 1) with 24 random bits, for element {@code index} of {@code stream}. */
    public static float uniform(long seed, long stream, long index) {
        int[] w = new int[4];
        block4(seed, stream, index >>> 2, w);
        return toUnit(w[(int) (index & 3)]);
    }

    private static final ThreadLocal<int[]> WORDS = ThreadLocal.withInitial(() -> new int[4]);

    /**
     * This thread's 4-word scratch for {@link #block4}, so a loop drawing numbers allocates none
     * (for leaf loops that call nothing else that uses it).
     */
    public static int[] scratch() {
        return WORDS.get();
    }

    /** The 4 words of block {@code blockIndex} (elements 4·blockIndex … 4·blockIndex+3). */
    public static void block4(long seed, long stream, long blockIndex, int[] out) {
        block((int) blockIndex, (int) (blockIndex >>> 32), (int) stream, (int) (stream >>> 32),
                (int) seed, (int) (seed >>> 32), out);
    }

    /**
     * A standard normal for element {@code index} of {@code stream}: Box–Muller on the uniforms of
     * elements 2·index and 2·index + 1 (words 2·(index mod 2) and 2·(index mod 2) + 1 of block
     * index/2), {@code √(−2·ln(1 − u₀))·cos(2π·u₁)}, in double and rounded once, as the CUDA
     * kernels' {@code rh_normal} computes it.
     */
    public static float normal(long seed, long stream, long index) {
        int[] w = new int[4];
        block4(seed, stream, index >>> 1, w);
        int at = (int) (index & 1) * 2;
        return boxMuller(w[at], w[at + 1]);
    }

    /** The normal from two Philox words (see {@link #normal}); 1 − u₀ is in (0, 1], so the log is finite. */
    public static float boxMuller(int word0, int word1) {
        double r = Math.sqrt(-2.0 * Math.log(1.0 - toUnit(word0)));
        return (float) (r * Math.cos(2.0 * Math.PI * toUnit(word1)));
    }

    /** The top 24 bits of a word as a float in [0, 1). */
    public static float toUnit(int word) {
        return (word >>> 8) * 0x1.0p-24f;
    }
}
