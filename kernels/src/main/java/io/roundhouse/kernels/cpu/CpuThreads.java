package io.roundhouse.kernels.cpu;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Row-parallel loops for the CPU backend's element-wise and gather work (activations, permutes),
 * on as many threads as OpenBLAS uses ({@code OPENBLAS_NUM_THREADS}, else one per core): the
 * GEMMs already use them, and the work between GEMMs ran on one. Rows split into contiguous
 * chunks and each row is computed exactly as the one-thread loop computes it, so results are the
 * same bits whatever the thread count. One pool per JVM (daemon threads); the calling thread runs
 * the first chunk. Work under {@link #MIN_ELEMENTS_PER_CHUNK} elements per chunk stays on the
 * caller: handing it over costs more than it saves.
 */
final class CpuThreads {
    /** The least work, in elements touched, worth a chunk of its own. */
    static final int MIN_ELEMENTS_PER_CHUNK = 1 << 15;

    static final int THREADS = threads();
    private static final ExecutorService POOL = THREADS > 1 ? Executors.newFixedThreadPool(THREADS - 1, r -> {
        Thread t = new Thread(r, "roundhouse-cpu-rows");
        t.setDaemon(true);
        return t;
    }) : null;

    /** The loop body over rows [from, to) of chunk {@code chunk}. */
    @FunctionalInterface
    interface Rows {
        void run(int chunk, int from, int to);
    }

    private CpuThreads() {
    }

    private static int threads() {
        String env = System.getenv("OPENBLAS_NUM_THREADS");
        try {
            int n = env == null || env.isBlank() ? Runtime.getRuntime().availableProcessors() : Integer.parseInt(env.trim());
            return Math.max(1, Math.min(n, Runtime.getRuntime().availableProcessors()));
        } catch (NumberFormatException e) {
            return 1;
        }
    }

    /** How many chunks {@code n} rows of {@code rowElements} each split into. */
    static int chunks(int n, long rowElements) {
        long total = n * Math.max(1, rowElements);
        return (int) Math.max(1, Math.min(Math.min(THREADS, n), total / MIN_ELEMENTS_PER_CHUNK));
    }

    /**
     * Runs {@code body} over rows [0, n) in {@link #chunks} contiguous chunks at once, and
     * returns when all are done; a chunk's exception is rethrown here.
     */
    static void rows(int n, long rowElements, Rows body) {
        int c = chunks(n, rowElements);
        if (c == 1) {
            body.run(0, 0, n);
            return;
        }
        CountDownLatch done = new CountDownLatch(c - 1);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        for (int k = 1; k < c; k++) {
            int chunk = k;
            POOL.execute(() -> {
                try {
                    body.run(chunk, start(n, chunk, c), start(n, chunk + 1, c));
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                } finally {
                    done.countDown();
                }
            });
        }
        try {
            body.run(0, 0, start(n, 1, c));
        } finally {
            try {
                done.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while the CPU backend's row chunks ran", e);
            }
        }
        Throwable t = failure.get();
        if (t instanceof RuntimeException r) {
            throw r;
        }
        if (t instanceof Error e) {
            throw e;
        }
    }

    private static int start(int n, int chunk, int chunks) {
        return (int) ((long) n * chunk / chunks);
    }
}
