package io.roundhouse.kernels.cpu;

import io.roundhouse.kernels.Activation;

/**
 * The CPU backend's activations over rows, split into chunks on the backend's threads
 * ({@link CpuThreads}): each row is computed as one thread computes it, so the bits do not depend
 * on the thread count. One {@link CpuActivations} per chunk, each with its own scratch.
 */
final class CpuActivationRows {
    private final CpuActivations[] activations = new CpuActivations[CpuThreads.THREADS];
    // The call being split (one backend, one calling thread): its arguments, read by the chunks'
    // bodies, which are made once, so a split call allocates nothing.
    private float[] out;
    private int outOff;
    private float[] in;
    private int inOff;
    private float[] pre;
    private int preOff;
    private int width;
    private Activation act;
    private final CpuThreads.Rows forwardChunk = (c, from, to) -> activations(c).forward(out, outOff + from * width, pre,
            preOff + from * act.preWidth(width), to - from, width, act);
    private final CpuThreads.Rows backwardChunk = (c, from, to) -> activations(c).backward(out,
            outOff + from * act.preWidth(width), in, inOff + from * width, pre, preOff + from * act.preWidth(width),
            to - from, width, act);

    /** The activation of n rows, their chunks on the backend's threads (the same bits as one thread). */
    void forward(float[] h, int ho, float[] a, int ao, int n, int f, Activation act) {
        int f1 = act.preWidth(f);
        if (CpuThreads.chunks(n, f1) == 1) {
            activations(0).forward(h, ho, a, ao, n, f, act);
            return;
        }
        set(h, ho, null, 0, a, ao, f, act);
        try {
            CpuThreads.rows(n, f1, forwardChunk);
        } finally {
            set(null, 0, null, 0, null, 0, 0, null);
        }
    }

    void backward(float[] da, int dao, float[] dh, int dho, float[] a, int ao, int n, int f,
                  Activation act) {
        int f1 = act.preWidth(f);
        if (CpuThreads.chunks(n, f1) == 1) {
            activations(0).backward(da, dao, dh, dho, a, ao, n, f, act);
            return;
        }
        set(da, dao, dh, dho, a, ao, f, act);
        try {
            CpuThreads.rows(n, f1, backwardChunk);
        } finally {
            set(null, 0, null, 0, null, 0, 0, null);
        }
    }

    private void set(float[] out, int outOff, float[] in, int inOff, float[] pre, int preOff, int width, Activation act) {
        this.out = out;
        this.outOff = outOff;
        this.in = in;
        this.inOff = inOff;
        this.pre = pre;
        this.preOff = preOff;
        this.width = width;
        this.act = act;
    }

    private CpuActivations activations(int chunk) {
        CpuActivations a = activations[chunk];
        if (a == null) {
            a = new CpuActivations();
            activations[chunk] = a;
        }
        return a;
    }
}
