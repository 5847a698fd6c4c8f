package io.roundhouse.worker.parallel;

import io.roundhouse.comms.Collectives;
import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.HostBuffer;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.worker.model.Param;
import io.roundhouse.worker.model.ParamStore;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.LockSupport;

/**
 * Data parallelism for the dense parameters: after backward, every worker's gradients of the
 * replicated (non-expert) parameters are summed over a flat buffer that holds them all in creation
 * order, so every worker steps identically and the result is the same from run to run. The same
 * all-reduce carries each worker's squared norm of its expert gradients (experts stay local when
 * each lives on one worker) and any per-step values the caller wants summed (the trainer's
 * metrics), so a step synchronises a few times, not once per parameter or value.
 *
 * <p>The dense gradients are summed in buckets of about {@link #BUCKET_FLOATS} floats, each one
 * all-reduce, then a last one for the rest (replica slots, the expert norm, the extra values). A
 * bucket holds whole parameters of one block ({@code block<b>.…}, cut from the block's last
 * parameter back) or of the parameters outside blocks. With overlap ({@code comms.overlap=all}, as
 * PyTorch DDP does) a block's buckets start as soon as its backward is done ({@link #blockDone},
 * between {@link #backwardStarts} and {@link #allReduce}), on a comms thread over a
 * {@link Collectives#sibling} of the group's members, while the compute thread goes on with the
 * blocks below (their token exchanges use the other member); the rest start in {@link #allReduce}.
 * Without, every bucket runs in {@link #allReduce}. Each element is summed the same way either
 * way, so the two schedules give the same bits (a test pins it).
 *
 * <p>With expert replicas (W > E) the buffer also holds, per expert parameter, a slot for each of
 * the E experts: every worker writes its hosted expert's gradient into that expert's slot (zeros
 * elsewhere), so the sum gives every replica the gradient over all tokens its expert saw, and
 * every worker sees every expert's gradient once for the norm.
 */
public final class DenseGradientSync implements AutoCloseable {
    /** A bucket's least size, in floats (256 KiB): a bucket is whole parameters, from the last back. */
    static final int BUCKET_FLOATS = 1 << 16;

    private final Backend be;
    private final Collectives c;
    private final List<Param> dense = new ArrayList<>();
    private final List<Param> experts = new ArrayList<>();
    private final int[] offsets;         // [dense + 1] where each dense gradient starts in flat
    private final boolean replicated;
    private final int expertSlot;        // which of the E slots this worker's expert fills
    private final int experts0;          // where the replica slots start
    private final int expertsEnd;        // where they end (= experts0 without replicas)
    private final int[] expertOffsets;   // [expert params] start of each parameter's E slots
    private final HostBuffer flat;       // [dense | replica slots | expert squared norm | extra]
    private final List<Tensor> denseGrads = new ArrayList<>();
    private final List<Tensor> expertGrads = new ArrayList<>();
    private final int[] replicaAt;       // [expert params] where this worker's slot of each starts in flat

    // Bucket k holds dense parameters [bucketLo[k], bucketHi[k]), of block bucketBlock[k] (-1: none).
    private final int[] bucketLo;
    private final int[] bucketHi;
    private final int[] bucketBlock;
    private final List<List<Tensor>> bucketGrads = new ArrayList<>();
    private final List<int[]> bucketOffsets = new ArrayList<>();
    private final boolean[] launched;    // [buckets] handed to the comms thread this step
    private final Comms comms;           // the comms thread with overlap; null without
    private boolean armed;               // between backwardStarts and allReduce
    private long startedInBackward;      // buckets started by blockDone, over the run

    /**
     * @param placement where the experts live (replicas are summed when W > E)
     * @param extra     how many values {@link #allReduce(float[])} sums along with the gradients
     * @param overlap   start buckets during backward on a comms thread (a collective: opens the
     *                  group's sibling members)
     */
    public DenseGradientSync(Backend be, ParamStore params, Collectives c, ExpertPlacement placement, int extra,
                             boolean overlap) {
        this.be = be;
        this.c = c;
        for (Param p : params.trainable()) {
            if (isExpert(p)) {
                experts.add(p);
            } else {
                dense.add(p);
            }
        }
        this.offsets = new int[dense.size() + 1];
        for (int i = 0; i < dense.size(); i++) {
            offsets[i + 1] = offsets[i] + dense.get(i).grad().size();
        }
        this.replicated = placement.replicated();
        this.expertSlot = placement.firstExpert(c.member().rank());
        this.experts0 = offsets[dense.size()];
        this.expertOffsets = new int[experts.size()];
        int at = experts0;
        if (replicated) {
            for (int i = 0; i < experts.size(); i++) {
                expertOffsets[i] = at;
                at += experts.get(i).grad().size() * placement.experts();  // one hosted expert per worker
            }
        }
        this.expertsEnd = at;
        for (Param p : dense) {
            denseGrads.add(p.grad());
        }
        this.replicaAt = new int[experts.size()];
        for (int i = 0; i < experts.size(); i++) {
            expertGrads.add(experts.get(i).grad());
            replicaAt[i] = expertOffsets[i] + expertSlot * experts.get(i).grad().size();
        }
        // The backend's host buffer (page-locked on a GPU): gradients are copied straight into the
        // memory the all-reduce sends from.
        this.flat = be.allocateHost("gradients.flat", expertsEnd + 1 + extra);

        List<int[]> buckets = new ArrayList<>();  // {lo, hi, block}
        for (int hi = dense.size(); hi > 0; ) {
            int block = blockOf(dense.get(hi - 1));
            int lo = hi - 1;
            while (lo > 0 && offsets[hi] - offsets[lo] < BUCKET_FLOATS && blockOf(dense.get(lo - 1)) == block) {
                lo--;
            }
            buckets.add(new int[] {lo, hi, block});
            hi = lo;
        }
        this.bucketLo = new int[buckets.size()];
        this.bucketHi = new int[buckets.size()];
        this.bucketBlock = new int[buckets.size()];
        for (int k = 0; k < buckets.size(); k++) {
            bucketLo[k] = buckets.get(k)[0];
            bucketHi[k] = buckets.get(k)[1];
            bucketBlock[k] = buckets.get(k)[2];
            bucketGrads.add(denseGrads.subList(bucketLo[k], bucketHi[k]));
            bucketOffsets.add(java.util.Arrays.copyOfRange(offsets, bucketLo[k], bucketHi[k]));
        }
        this.launched = new boolean[buckets.size()];
        this.comms = overlap && !buckets.isEmpty() ? new Comms(c.sibling(), c.member().rank()) : null;
    }

    /** b for a parameter named {@code block<b>.…}, else -1. */
    private static int blockOf(Param p) {
        String n = p.name();
        int dot = n.indexOf('.');
        if (dot <= 5 || !n.startsWith("block")) {
            return -1;
        }
        for (int i = 5; i < dot; i++) {
            if (!Character.isDigit(n.charAt(i))) {
                return -1;
            }
        }
        return Integer.parseInt(n, 5, dot, 10);
    }

    /** Expert parameters are named {@code <block>.moe.experts.<w1|b1|w2|b2>}. */
    static boolean isExpert(Param p) {
        return p.expert();
    }

    /** How many dense buckets a step sums (before the last all-reduce of the rest). */
    public int buckets() {
        return bucketLo.length;
    }

    /**
     * The last step's bucket all-reduces on the comms thread, for its timeline: {bucket, start
     * (System.nanoTime), nanos} per bucket in the order they ran; null without overlap. Read it
     * after {@link #allReduce}, before the next step's backward.
     */
    public long[] bucketSpans() {
        return comms == null ? null : comms.spans;
    }

    /** Buckets started during backward (by {@link #blockDone}) since construction. */
    public long startedInBackward() {
        return startedInBackward;
    }

    /**
     * The training step's backward begins: from now until {@link #allReduce}, {@link #blockDone}
     * starts buckets. Backward passes that no all-reduce follows (an attack's input gradients) run
     * outside this window.
     */
    public void backwardStarts() {
        armed = true;
    }

    /**
     * Backward is done with block {@code b} ({@code block<b>.…}): its gradients are final, and its
     * buckets start (with overlap; without, nothing happens here). Every worker calls it at the
     * same points.
     */
    public void blockDone(int b) {
        if (!armed || comms == null) {
            return;
        }
        for (int k = 0; k < bucketBlock.length; k++) {
            if (bucketBlock[k] == b && !launched[k]) {
                launch(k);
                startedInBackward++;
            }
        }
    }

    /** Copies bucket k's gradients into the flat buffer and hands it to the comms thread. */
    private void launch(int k) {
        launched[k] = true;
        be.read(bucketGrads.get(k), flat, bucketOffsets.get(k));
        comms.hand(k);
    }

    /**
     * Sums the dense gradients (and, with replicas, the expert gradients among replicas) over the
     * workers in place, and {@code extra} (of the length given at construction) likewise.
     *
     * @return the L2 norm of the whole model's gradient: dense gradients once, every expert's once
     */
    public double allReduce(float[] extra) {
        int size = expertsEnd + 1 + extra.length;
        if (size != flat.capacity()) {
            throw new IllegalArgumentException("allReduce: " + extra.length + " extra values, built for "
                    + (flat.capacity() - expertsEnd - 1));
        }
        armed = false;
        if (comms != null) {
            for (int k = 0; k < launched.length; k++) {
                if (!launched[k]) {
                    launch(k);
                }
                launched[k] = false;
            }
        } else {
            // Batched: on a GPU each batch is one wait, not one per parameter.
            be.read(denseGrads, flat, offsets);
            for (int k = 0; k < bucketLo.length; k++) {
                sum(c, k);
            }
        }
        double expertSq = 0;
        if (replicated) {
            for (int j = experts0; j < expertsEnd; j++) {
                flat.put(j, 0f);
            }
            be.read(expertGrads, flat, replicaAt);
        } else {
            expertSq = be.sumSquares(expertGrads);
        }
        flat.put(expertsEnd, (float) expertSq);
        flat.put(expertsEnd + 1, extra, 0, extra.length);
        if (comms != null) {
            comms.awaitHanded();
        }
        c.allReduceSum(flat.bytes(), experts0, size - experts0);
        be.write(denseGrads, flat, offsets);
        double replicaSq = 0;
        if (replicated) {
            be.write(expertGrads, flat, replicaAt);
            for (int j = experts0; j < expertsEnd; j++) {
                double v = flat.get(j);
                replicaSq += v * v;
            }
        }
        flat.get(expertsEnd + 1, extra, 0, extra.length);
        double denseSq = be.sumSquares(denseGrads);
        return Math.sqrt(denseSq + flat.get(expertsEnd) + replicaSq);
    }

    /** The all-reduce of bucket k over {@code on}. */
    private void sum(Collectives on, int k) {
        on.allReduceSum(flat.bytes(), offsets[bucketLo[k]], offsets[bucketHi[k]] - offsets[bucketLo[k]]);
    }

    /** Stops the comms thread (the sibling member closes with the group's member). */
    @Override
    public void close() {
        if (comms != null) {
            comms.stop();
        }
    }

    /**
     * The comms thread: sums the buckets handed to it, in order, on the sibling collectives. Jobs
     * are counted from the start of the run (job j's bucket is in slot j mod the bucket count: a
     * step hands each bucket once), so a step needs no reset: the compute thread hands jobs up
     * ({@link #hand}, in the same order on every worker) and waits for the last one
     * ({@link #awaitHanded}); a failure (a peer gone, a timeout: a named error) is thrown on the
     * compute thread there. The buckets' regions of the flat buffer are the comms thread's from
     * their hand-over until they are done (the volatile counters order the accesses).
     */
    private final class Comms implements Runnable {
        private final Collectives sibling;
        private final Thread thread;
        private final int[] queue = new int[bucketLo.length];  // job j's bucket at j mod length
        private final long[] spans = new long[3 * bucketLo.length];  // per slot: bucket, start, nanos
        private long handedHere;            // the compute thread's count
        private volatile long handed;
        private volatile long done;
        private volatile boolean stopping;
        private volatile RuntimeException failure;

        Comms(Collectives sibling, int rank) {
            this.sibling = sibling;
            this.thread = new Thread(this, "roundhouse-gradient-comms-" + rank);
            thread.setDaemon(true);
            thread.start();
        }

        /** Bucket k may run, after those handed before it. */
        void hand(int k) {
            queue[(int) (handedHere % queue.length)] = k;
            handed = ++handedHere;
            LockSupport.unpark(thread);
        }

        /** Returns once every bucket handed over is summed; rethrows the comms thread's failure. */
        void awaitHanded() {
            int spins = 0;
            while (done < handedHere) {
                RuntimeException f = failure;
                if (f != null) {
                    throw f;
                }
                if (++spins < 100) {
                    Thread.onSpinWait();
                } else if (spins < 1_000) {
                    Thread.yield();
                } else {
                    LockSupport.parkNanos(20_000);
                }
            }
        }

        @Override
        public void run() {
            long next = 0;
            while (!stopping) {
                if (next >= handed) {
                    LockSupport.park(this);
                    continue;
                }
                int slot = (int) (next % queue.length);
                long t0 = System.nanoTime();
                try {
                    sum(sibling, queue[slot]);
                } catch (RuntimeException e) {
                    failure = e;
                    return;
                }
                spans[3 * slot] = queue[slot];
                spans[3 * slot + 1] = t0;
                spans[3 * slot + 2] = System.nanoTime() - t0;
                done = ++next;
            }
        }

        void stop() {
            stopping = true;
            LockSupport.unpark(thread);
        }
    }
}
