package io.roundhouse.kernels.cpu;

import io.roundhouse.kernels.Activation;

/**
 * The CPU backend's activations over rows, split into chunks on the backend's threads
 * ({@link CpuThreads}): each row is computed as one thread computes it, so the bits do not depend
 * on the thread count. One {@link CpuActivations} per chunk, each with its own scratch.
 */
final class CpuActivationRows {
    private final CpuActivations[] activations = new CpuActivations[CpuThreads.THREADS];

    /** The activation of n rows, their chunks on the backend's threads (the same bits as one thread). */
    void forward(float[] h, int ho, float[] a, int ao, int n, int f, Activation act) {
        int f1 = act.preWidth(f);
        if (CpuThreads.chunks(n, f1) == 1) {  // on the caller, without the lambda's allocation
            activations(0).forward(h, ho, a, ao, n, f, act);
            return;
        }
        CpuThreads.rows(n, f1, (c, from, to) -> activations(c).forward(h, ho + from * f, a, ao + from * f1, to - from,
                f, act));
    }

    void backward(float[] da, int dao, float[] dh, int dho, float[] a, int ao, int n, int f,
                  Activation act) {
        int f1 = act.preWidth(f);
        if (CpuThreads.chunks(n, f1) == 1) {
            activations(0).backward(da, dao, dh, dho, a, ao, n, f, act);
            return;
        }
        CpuThreads.rows(n, f1, (c, from, to) -> activations(c).backward(da, dao + from * f1, dh, dho + from * f, a,
                ao + from * f1, to - from, f, act));
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
