package io.roundhouse.kernels.cpu;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;

/**
 * Row-parallel loops for the CPU backend's element-wise and gather work (activations, permutes),
 * on as many threads as OpenBLAS uses ({@code OPENBLAS_NUM_THREADS}, else one per core): the
 * GEMMs already use them, and the work between GEMMs ran on one. Rows split into contiguous
 * chunks and each row is computed exactly as the one-thread loop computes it, so results are the
 * same bits whatever the thread count. One set of helper threads per JVM (daemon threads); the
 * calling thread runs the first chunk. Work under {@link #MIN_ELEMENTS_PER_CHUNK} elements per chunk stays on the
 * caller: handing it over costs more than it saves.
 */
final class CpuThreads {
    /** The least work, in elements touched, worth a chunk of its own. */
    static final int MIN_ELEMENTS_PER_CHUNK = 1 << 15;

    static final int THREADS = threads();

    /** The helpers, one per chunk after the first, started once; null with one thread. */
    private static final Helper[] HELPERS = THREADS > 1 ? helpers(THREADS - 1) : null;
    /** Held by the call whose chunks the helpers run; another caller meanwhile runs its rows alone. */
    private static final AtomicBoolean BUSY = new AtomicBoolean();
    /** Chunks of the current call still running on helpers. */
    private static final AtomicInteger PENDING = new AtomicInteger();
    /** The first exception a helper's chunk threw in the current call. */
    private static final AtomicReference<Throwable> FAILURE = new AtomicReference<>();

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
     * returns when all are done; a chunk's exception is rethrown here. The hand-over allocates
     * nothing: each helper thread has one job slot, filled here and woken. A call made while
     * another thread's call holds the helpers (workers of one JVM) runs its rows as one chunk on
     * its own thread, which gives the same bits.
     */
    static void rows(int n, long rowElements, Rows body) {
        int c = chunks(n, rowElements);
        if (c == 1 || !BUSY.compareAndSet(false, true)) {
            body.run(0, 0, n);
            return;
        }
        try {
            FAILURE.set(null);
            PENDING.set(c - 1);
            for (int k = 1; k < c; k++) {
                HELPERS[k - 1].start(body, k, start(n, k, c), start(n, k + 1, c));
            }
            try {
                body.run(0, 0, start(n, 1, c));
            } finally {
                int spins = 0;
                while (PENDING.get() > 0) {
                    if (++spins < 1_000) {
                        Thread.onSpinWait();
                    } else {
                        Thread.yield();
                    }
                }
            }
            Throwable t = FAILURE.get();
            if (t instanceof RuntimeException r) {
                throw r;
            }
            if (t instanceof Error e) {
                throw e;
            }
        } finally {
            BUSY.set(false);
        }
    }

    private static int start(int n, int chunk, int chunks) {
        return (int) ((long) n * chunk / chunks);
    }

    private static Helper[] helpers(int count) {
        Helper[] h = new Helper[count];
        for (int i = 0; i < count; i++) {
            h[i] = new Helper();
            Thread t = new Thread(h[i], "roundhouse-cpu-rows");
            t.setDaemon(true);
            h[i].thread = t;
            t.start();
        }
        return h;
    }

    /** A helper thread and its job slot: parked until {@link #start} fills the slot and wakes it. */
    private static final class Helper implements Runnable {
        private Thread thread;
        private Rows body;
        private int chunk;
        private int from;
        private int to;
        private volatile boolean ready;  // written last by start, cleared by the helper once done

        void start(Rows b, int k, int f, int t) {
            body = b;
            chunk = k;
            from = f;
            to = t;
            ready = true;  // publishes the fields above
            LockSupport.unpark(thread);
        }

        @Override
        public void run() {
            while (true) {
                while (!ready) {
                    LockSupport.park(this);
                }
                try {
                    body.run(chunk, from, to);
                } catch (Throwable t) {
                    FAILURE.compareAndSet(null, t);
                } finally {
                    body = null;
                    ready = false;
                    PENDING.decrementAndGet();
                }
            }
        }
    }
}
