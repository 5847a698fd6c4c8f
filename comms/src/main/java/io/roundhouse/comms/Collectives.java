package io.roundhouse.comms;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.agrona.BufferUtil;
import org.agrona.UnsafeApi;

/**
 * The collectives of one member, on float data (and bytes, for control traffic). Every member of
 * the group must call the same collectives in the same order. Nothing here allocates on the hot
 * path except {@link #allReduceSum}'s scratch, which grows to the largest vector once.
 *
 * <p>The float collectives of the training step ({@link #allToAllV}, {@link #allReduceSum}) also
 * take byte buffers, so data can travel from off-heap memory, such as the page-locked host buffers
 * a GPU copies into, with no copy into a Java array first. Offsets and counts are in floats either
 * way; a buffer's position and limit are ignored (its capacity bounds it).
 */
public final class Collectives {
    private static final long FLOAT_BASE = UnsafeApi.arrayBaseOffset(float[].class);
    private final Member m;
    private final int rank;
    private final int size;
    private final int[] one = new int[1];
    private float[] scratch = new float[0];
    private final TwoLevelAllToAll twoLevel;
    // A held all-to-all's block to self, copied as it is released (startAllToAllVHeld).
    private Object selfSend;
    private long selfSendAt;
    private Object selfRecv;
    private long selfRecvAt;
    private int selfFloats;
    private int selfReleased;
    private Collectives foreground;  // foregroundSibling(), once made

    public Collectives(Member member) {
        this.m = member;
        this.rank = member.rank();
        this.size = member.size();
        this.twoLevel = new TwoLevelAllToAll(member);
    }

    public Member member() {
        return m;
    }

    /**
     * Collectives of the same group on a {@link Member#sibling} of this member: a collective
     * (every member calls it at the same point). The two run beside each other on two threads
     * (say, a gradient all-reduce on a comms thread while the compute thread exchanges tokens).
     */
    public Collectives sibling() {
        return new Collectives(m.sibling());
    }

    /**
     * The sibling that waits as this member does (not in the background), for collectives the
     * compute thread itself runs beside this member's and waits for: made at the first call (a
     * collective then), the same one after.
     */
    public Collectives foregroundSibling() {
        if (foreground == null) {
            foreground = new Collectives(m.sibling(false));
        }
        return foreground;
    }

    /** Returns once every member has entered the barrier. */
    public void barrier() {
        barrier("barrier", m.config().opTimeoutMs());
    }

    /**
     * The members' first meeting after {@link Member#connect}: a barrier that waits up to the
     * connect timeout rather than the op timeout, since members finish setting up (loading data,
     * checking a GPU) at different speeds. Every later op then waits at most the op timeout.
     */
    public void startBarrier() {
        barrier("start", m.config().connectTimeoutMs());
    }

    private void barrier(String name, long timeoutMs) {
        m.beginOp(name);
        for (int r = 0; r < size; r++) {
            if (r != rank) {
                m.send(r, null, 0, 0);
                m.receive(r, null, 0, 0, 0);
            }
        }
        m.transfer(timeoutMs);
    }

    /**
     * Exchanges counts: {@code recvCounts[r]} becomes what rank r's {@code sendCounts[rank]} was.
     *
     * @return the sum of recvCounts
     */
    public int allToAllCounts(int[] sendCounts, int[] recvCounts) {
        if (sendCounts.length != size || recvCounts.length != size) {
            throw new IllegalArgumentException("allToAllCounts needs arrays of the group size " + size);
        }
        m.beginOp("allToAll counts");
        for (int r = 0; r < size; r++) {
            if (r == rank) {
                recvCounts[r] = sendCounts[r];
            } else {
                m.sendInts(r, sendCounts, r, 1);
                m.receiveInts(r, recvCounts, r, 1);
            }
        }
        m.transfer();
        int total = 0;
        for (int c : recvCounts) {
            if (c < 0) {
                throw new PeerException(java.util.List.of(), "allToAllCounts: a peer announced a negative count " + c);
            }
            total += c;
        }
        return total;
    }

    /**
     * Variable-size all-to-all of floats. The block for rank r is
     * {@code send[sendOff + Σ_{q<r} sendCounts[q] …]} of length {@code sendCounts[r]}; what rank r
     * sends here lands at {@code recv[recvOff + Σ_{q<r} recvCounts[q] …]}. recvCounts must be what
     * {@link #allToAllCounts} returned (zero-length blocks are fine).
     */
    public void allToAllV(float[] send, int sendOff, int[] sendCounts, float[] recv, int recvOff, int[] recvCounts) {
        checkSpan("allToAllV: send", send.length, sendOff, sendCounts);
        checkSpan("allToAllV: recv", recv.length, recvOff, recvCounts);
        allToAllV(send, FLOAT_BASE + 4L * sendOff, sendCounts, recv, FLOAT_BASE + 4L * recvOff, recvCounts);
    }

    /** {@link #allToAllV(float[], int, int[], float[], int, int[])} between buffers (offsets in floats). */
    public void allToAllV(ByteBuffer send, int sendOff, int[] sendCounts, ByteBuffer recv, int recvOff,
                          int[] recvCounts) {
        checkSpan("allToAllV: send", send.capacity() / 4, sendOff, sendCounts);
        checkSpan("allToAllV: recv", recv.capacity() / 4, recvOff, recvCounts);
        allToAllV(base(send), address(send) + 4L * sendOff, sendCounts, base(recv), address(recv) + 4L * recvOff,
                recvCounts);
    }

    /** The object a buffer's memory is in, for Unsafe: its array, or null for direct memory. */
    private static Object base(ByteBuffer b) {
        return b.isDirect() ? null : b.array();
    }

    /** Where a buffer's byte 0 is, relative to {@link #base}. */
    private static long address(ByteBuffer b) {
        return b.isDirect() ? BufferUtil.address(b) : BufferUtil.ARRAY_BASE_OFFSET + b.arrayOffset();
    }

    /**
     * Starts {@link #allToAllV(ByteBuffer, int, int[], ByteBuffer, int, int[])} and returns without
     * waiting for the peers: the blocks are on their way (see {@link Member#start}) while the caller
     * computes; {@link #finish} waits for what this member receives. Until then no other collective
     * may run on this member, and neither buffer may be touched. The result is the blocking call's,
     * and a peer may run the blocking call against it.
     */
    public void startAllToAllV(ByteBuffer send, int sendOff, int[] sendCounts, ByteBuffer recv, int recvOff,
                               int[] recvCounts) {
        checkSpan("allToAllV: send", send.capacity() / 4, sendOff, sendCounts);
        checkSpan("allToAllV: recv", recv.capacity() / 4, recvOff, recvCounts);
        queueAllToAllV(base(send), address(send) + 4L * sendOff, sendCounts, base(recv), address(recv) + 4L * recvOff,
                recvCounts);
        m.start();
    }

    /**
     * Starts {@link #allToAllV2D(ByteBuffer, int, ByteBuffer, int, int[])}. The two-level exchange
     * has rounds that depend on each other, so it runs whole here; {@link #finish} then returns at once.
     */
    public void startAllToAllV2D(ByteBuffer send, int sendOff, ByteBuffer recv, int recvOff, int[] matrix) {
        allToAllV2D(send, sendOff, recv, recvOff, matrix);
    }

    /**
     * During a started {@link #startAllToAllV}: waits until the first {@code floats} floats of the
     * block from rank {@code src} are in {@code recv} (the block to self is there from the start),
     * so the caller can compute on them while the rest travels; {@link #finish} still completes the
     * exchange.
     */
    public void awaitReceived(int src, int floats) {
        awaitReceived(src, floats, null);
    }

    /**
     * {@link #awaitReceived(int, int)}, moving {@code also}'s started collective along meanwhile (a
     * sibling's, whose frames would otherwise wait for its own finish).
     */
    public void awaitReceived(int src, int floats, Collectives also) {
        if (!m.started()) {
            throw new IllegalStateException("comms: awaitReceived outside a started all-to-all on " + m.describe(rank));
        }
        if (src != rank) {
            m.awaitReceived(src, 4 * floats, also == null ? null : also.m);
        }
    }

    /**
     * {@link #startAllToAllV} whose blocks are held: block r leaves (the block to self is copied)
     * only as far as {@link #release} lets it, so a sender can fill {@code send} while the
     * exchange runs (the rows of an expert as it finishes them). {@link #finish} completes it once
     * everything is released. {@code send}'s released parts must stay as they are until then.
     */
    public void startAllToAllVHeld(ByteBuffer send, int sendOff, int[] sendCounts, ByteBuffer recv, int recvOff,
                                   int[] recvCounts) {
        checkSpan("allToAllV: send", send.capacity() / 4, sendOff, sendCounts);
        checkSpan("allToAllV: recv", recv.capacity() / 4, recvOff, recvCounts);
        m.beginOp("allToAll");
        if (sendCounts[rank] != recvCounts[rank]) {
            throw new IllegalArgumentException("allToAllV: the block to self has " + sendCounts[rank]
                    + " floats but recvCounts says " + recvCounts[rank]);
        }
        long sendAt = address(send) + 4L * sendOff;
        long recvAt = address(recv) + 4L * recvOff;
        selfSend = base(send);
        selfSendAt = sendAt + 4L * offsetOf(sendCounts, rank);
        selfRecv = base(recv);
        selfRecvAt = recvAt + 4L * offsetOf(recvCounts, rank);
        selfFloats = sendCounts[rank];
        selfReleased = 0;
        for (int r = 0; r < size; r++) {
            if (r != rank) {
                m.sendHeld(r, base(send), sendAt + 4L * offsetOf(sendCounts, r), 4 * sendCounts[r]);
                m.receive(r, base(recv), recvAt + 4L * offsetOf(recvCounts, r), 4 * recvCounts[r], 4 * recvCounts[r]);
            }
        }
        m.start();
    }

    /**
     * During a held all-to-all: the first {@code floats} floats of the block to rank {@code dst} may
     * leave (to self: are copied); never less than before.
     */
    public void release(int dst, int floats) {
        if (!m.started()) {
            throw new IllegalStateException("comms: release outside a held all-to-all on " + m.describe(rank));
        }
        if (dst != rank) {
            m.release(dst, 4 * floats);
            return;
        }
        if (floats < selfReleased || floats > selfFloats) {
            throw new IllegalArgumentException("allToAllV: release of " + floats + " floats to self, whose block is "
                    + selfFloats + " floats, " + selfReleased + " released");
        }
        UnsafeApi.copyMemory(selfSend, selfSendAt + 4L * selfReleased, selfRecv, selfRecvAt + 4L * selfReleased,
                4L * (floats - selfReleased));
        selfReleased = floats;
    }

    /** Finishes the collective a {@code start…} call began (nothing to do when none is in flight). */
    public void finish() {
        if (m.started()) {
            if (!m.released() || selfReleased < selfFloats) {
                throw new IllegalStateException("comms: finish of a held all-to-all on " + m.describe(rank) + " before "
                        + "every block was released whole; release(dst, floats) each block to its end first");
            }
            m.transfer();
        }
    }

    /** The all-to-all between floats at (base, address): a float[] and its offset, or off-heap memory. */
    private void allToAllV(Object send, long sendAt, int[] sendCounts, Object recv, long recvAt, int[] recvCounts) {
        queueAllToAllV(send, sendAt, sendCounts, recv, recvAt, recvCounts);
        m.transfer();
    }

    /** Begins the all-to-all and queues its blocks (the block to self is copied now). */
    private void queueAllToAllV(Object send, long sendAt, int[] sendCounts, Object recv, long recvAt,
                                int[] recvCounts) {
        m.beginOp("allToAll");
        if (sendCounts[rank] != recvCounts[rank]) {
            throw new IllegalArgumentException("allToAllV: the block to self has " + sendCounts[rank]
                    + " floats but recvCounts says " + recvCounts[rank]);
        }
        selfFloats = 0;
        selfReleased = 0;
        UnsafeApi.copyMemory(send, sendAt + 4L * offsetOf(sendCounts, rank), recv,
                recvAt + 4L * offsetOf(recvCounts, rank), 4L * sendCounts[rank]);
        for (int r = 0; r < size; r++) {
            if (r == rank) {
                continue;
            }
            m.send(r, send, sendAt + 4L * offsetOf(sendCounts, r), 4 * sendCounts[r]);
            m.receive(r, recv, recvAt + 4L * offsetOf(recvCounts, r), 4 * recvCounts[r], 4 * recvCounts[r]);
        }
    }

    /**
     * The all-to-all of {@link #allToAllV} in two levels (as Tutel and DeepSpeed-MoE do), for
     * groups over several hosts: see {@link TwoLevelAllToAll}. The sizes come from
     * {@code matrix[s·W + d]}, the floats rank s sends rank d, which every member must know (and
     * pass alike). With one host, or hosts of unequal sizes, it is the flat {@link #allToAllV}.
     */
    public void allToAllV2D(float[] send, int sendOff, float[] recv, int recvOff, int[] matrix) {
        checkSpan("allToAllV2D: send", send.length, sendOff, twoLevel.sendCounts(matrix));
        checkSpan("allToAllV2D: recv", recv.length, recvOff, twoLevel.recvCounts(matrix));
        twoLevel.run(send, FLOAT_BASE + 4L * sendOff, recv, FLOAT_BASE + 4L * recvOff, matrix, this::allToAllV);
    }

    /** {@link #allToAllV2D(float[], int, float[], int, int[])} between buffers (offsets in floats). */
    public void allToAllV2D(ByteBuffer send, int sendOff, ByteBuffer recv, int recvOff, int[] matrix) {
        checkSpan("allToAllV2D: send", send.capacity() / 4, sendOff, twoLevel.sendCounts(matrix));
        checkSpan("allToAllV2D: recv", recv.capacity() / 4, recvOff, twoLevel.recvCounts(matrix));
        twoLevel.run(base(send), address(send) + 4L * sendOff, base(recv), address(recv) + 4L * recvOff, matrix,
                this::allToAllV);
    }

    /** Refuses counts that run past the end of a buffer of {@code length} floats (they would be raw-copied). */
    private void checkSpan(String what, long length, int off, int[] counts) {
        if (counts.length != size) {
            throw new IllegalArgumentException(what + ": " + counts.length + " counts for a group of " + size);
        }
        long total = 0;
        for (int c : counts) {
            if (c < 0) {
                throw new IllegalArgumentException(what + ": a negative count " + c);
            }
            total += c;
        }
        checkSpan(what, length, off, total);
    }

    private static void checkSpan(String what, long length, long off, long n) {
        if (off < 0 || n < 0 || off + n > length) {
            throw new IndexOutOfBoundsException(what + ": floats [" + off + ", " + (off + n) + ") of a buffer of "
                    + length);
        }
    }

    /**
     * Variable-size all-to-all of ints whose sizes every member already knows (layout as
     * {@link #allToAllV}); used for per-expert row counts.
     */
    public void allToAllInts(int[] send, int[] sendCounts, int[] recv, int[] recvCounts) {
        m.beginOp("allToAll ints");
        if (sendCounts[rank] != recvCounts[rank]) {
            throw new IllegalArgumentException("allToAllInts: the block to self has " + sendCounts[rank]
                    + " ints but recvCounts says " + recvCounts[rank]);
        }
        System.arraycopy(send, offsetOf(sendCounts, rank), recv, offsetOf(recvCounts, rank), sendCounts[rank]);
        for (int r = 0; r < size; r++) {
            if (r != rank) {
                m.sendInts(r, send, offsetOf(sendCounts, r), sendCounts[r]);
                m.receiveInts(r, recv, offsetOf(recvCounts, r), recvCounts[r]);
            }
        }
        m.transfer();
    }

    /** Counts, then data: {@link #allToAllCounts} then {@link #allToAllV}. Returns the floats received. */
    public int allToAll(float[] send, int sendOff, int[] sendCounts, float[] recv, int recvOff, int[] recvCounts) {
        int total = allToAllCounts(sendCounts, recvCounts);
        if (recvOff + (long) total > recv.length) {
            throw new CommsException("comms allToAll on " + m.describe(rank) + ": " + total + " floats arrive but the "
                    + "receive buffer holds " + (recv.length - recvOff));
        }
        allToAllV(send, sendOff, sendCounts, recv, recvOff, recvCounts);
        return total;
    }

    private static int offsetOf(int[] counts, int r) {
        int o = 0;
        for (int q = 0; q < r; q++) {
            o += counts[q];
        }
        return o;
    }

    /**
     * Vectors up to this many floats are summed in one round (every member sends its vector to
     * every other) instead of the ring's 2(W−1) rounds: for the small per-step sums (router
     * statistics, metrics) latency, not bandwidth, is the cost. Two members always sum directly:
     * each then sends n floats once, as many bytes as the ring's two rounds of n/2.
     */
    static final int DIRECT_MAX_FLOATS = 4096;

    /**
     * In-place sum over the group of {@code data[off, off+n)}. Up to {@link #DIRECT_MAX_FLOATS}
     * floats, or with two members: one round in which every member sends its vector to every other, then every member
     * adds them in rank order. Larger: a ring reduce-scatter then all-gather, each element summed
     * in an order fixed by the ring. Either way the result is bit-identical from run to run and on
     * every member.
     */
    public void allReduceSum(float[] data, int off, int n) {
        checkSpan("allReduceSum", data.length, off, n);
        allReduceSum(data, FLOAT_BASE + 4L * off, n);
    }

    /** {@link #allReduceSum(float[], int, int)} of {@code data}'s floats [off, off+n), in native byte order. */
    public void allReduceSum(ByteBuffer data, int off, int n) {
        if (data.order() != ByteOrder.nativeOrder()) {
            throw new IllegalArgumentException("allReduceSum: the buffer is " + data.order() + "; it adds floats in "
                    + "native order (" + ByteOrder.nativeOrder() + "): set data.order(ByteOrder.nativeOrder())");
        }
        checkSpan("allReduceSum", data.capacity() / 4, off, n);
        allReduceSum(base(data), address(data) + 4L * off, n);
    }

    /** The sum over n floats at (base, at): a float[] and its offset, or off-heap memory. */
    private void allReduceSum(Object base, long at, int n) {
        if (size == 1) {
            return;
        }
        if (n <= DIRECT_MAX_FLOATS || size == 2) {
            allReduceDirect(base, at, n);
            return;
        }
        if (scratch.length < n) {
            scratch = new float[n];
        }
        int right = (rank + 1) % size;
        int left = (rank + size - 1) % size;
        m.beginOp("allReduce");
        for (int k = 0; k < size - 1; k++) {
            if (k > 0) {
                m.nextStep();
            }
            int s = Math.floorMod(rank - k, size);
            int r = Math.floorMod(rank - k - 1, size);
            sendChunk(right, base, at, s, n);
            m.receive(left, scratch, FLOAT_BASE + 4L * lo(r, n), 4 * (lo(r + 1, n) - lo(r, n)),
                    4 * (lo(r + 1, n) - lo(r, n)));
            m.transfer();
            for (int j = lo(r, n), end = lo(r + 1, n); j < end; j++) {
                long a = at + 4L * j;
                UnsafeApi.putFloat(base, a, UnsafeApi.getFloat(base, a) + scratch[j]);
            }
        }
        for (int k = 0; k < size - 1; k++) {
            m.nextStep();
            int s = Math.floorMod(rank + 1 - k, size);
            int r = Math.floorMod(rank - k, size);
            sendChunk(right, base, at, s, n);
            int bytes = 4 * (lo(r + 1, n) - lo(r, n));
            m.receive(left, base, at + 4L * lo(r, n), bytes, bytes);
            m.transfer();
        }
    }

    /** Queues ring chunk c of the n floats at (base, at) for rank dst. */
    private void sendChunk(int dst, Object base, long at, int c, int n) {
        m.send(dst, base, at + 4L * lo(c, n), 4 * (lo(c + 1, n) - lo(c, n)));
    }

    /**
     * Every member's {@code data[off, off+n)} to every member, in one round: rank r's lands at
     * {@code recv[r·n, (r+1)·n)} (n must agree).
     */
    public void allGather(float[] data, int off, int n, float[] recv) {
        checkSpan("allGather", data.length, off, n);
        allGather(data, FLOAT_BASE + 4L * off, n, recv);
    }

    private void allGather(Object base, long at, int n, float[] recv) {
        if (recv.length < (long) size * n) {
            throw new IllegalArgumentException("allGather: recv holds " + recv.length + " floats, needs " + size * n);
        }
        m.beginOp("allGather");
        UnsafeApi.copyMemory(base, at, recv, FLOAT_BASE + 4L * rank * n, 4L * n);
        for (int r = 0; r < size; r++) {
            if (r != rank) {
                m.send(r, base, at, 4 * n);
                m.receive(r, recv, FLOAT_BASE + 4L * r * n, 4 * n, 4 * n);
            }
        }
        m.transfer();
    }

    private void allReduceDirect(Object base, long at, int n) {
        if (scratch.length < size * n) {
            scratch = new float[size * n];
        }
        allGather(base, at, n, scratch);
        // Summed in rank order into scratch's first row (array loops the JIT vectorises), then copied out.
        for (int r = 1; r < size; r++) {
            for (int j = 0; j < n; j++) {
                scratch[j] += scratch[r * n + j];
            }
        }
        UnsafeApi.copyMemory(scratch, FLOAT_BASE, base, at, 4L * n);
    }

    /** Start of ring chunk c of n elements. */
    private int lo(int c, int n) {
        return (int) ((long) c * n / size);
    }

    /**
     * A point-to-point round (MPI's sendrecv): {@code send[sendOff, sendOff+sendN)} to rank
     * {@code to} while {@code recvN} floats from rank {@code from} land at {@code recv[recvOff…]}.
     * Like every collective, every member calls it: one with nothing to send or receive passes
     * {@code -1} for {@code to} or {@code from} (a member may only pair with others, never itself),
     * and a member that passes -1 for both returns at once. Sizes must agree between the pair.
     */
    public void sendRecv(int to, float[] send, int sendOff, int sendN, int from, float[] recv, int recvOff, int recvN) {
        if (to == rank || from == rank || to < -1 || to >= size || from < -1 || from >= size) {
            throw new IllegalArgumentException("sendRecv on rank " + rank + " of " + size + ": to " + to + ", from "
                    + from + " (another member's rank, or -1 for none)");
        }
        m.beginOp("sendRecv");
        if (to >= 0) {
            m.sendFloats(to, send, sendOff, sendN);
        }
        if (from >= 0) {
            m.receiveFloats(from, recv, recvOff, recvN);
        }
        if (to >= 0 || from >= 0) {
            m.transfer();
        }
    }

    /** {@code data[off, off+n)} of {@code root} copied to every member (n must agree). */
    public void broadcast(int root, float[] data, int off, int n) {
        m.beginOp("broadcast");
        if (rank == root) {
            for (int r = 0; r < size; r++) {
                if (r != root) {
                    m.sendFloats(r, data, off, n);
                }
            }
        } else {
            m.receiveFloats(root, data, off, n);
        }
        m.transfer();
    }

    /**
     * A byte message of {@code root} to every member.
     *
     * @param len at the root the message length; elsewhere the room in {@code buf} from off
     * @return the message length
     */
    public int broadcastBytes(int root, byte[] buf, int off, int len) {
        m.beginOp("broadcast");
        if (rank == root) {
            for (int r = 0; r < size; r++) {
                if (r != root) {
                    m.sendBytes(r, buf, off, len);
                }
            }
            m.transfer();
            return len;
        }
        m.receiveBytes(root, buf, off, len);
        m.transfer();
        return m.receivedBytes(root);
    }

    /** Every member's {@code send[off, off+n)} to the root, at {@code recv[recvOff + r·n]} (same n everywhere). */
    public void gather(int root, float[] send, int off, int n, float[] recv, int recvOff) {
        m.beginOp("gather");
        if (rank == root) {
            for (int r = 0; r < size; r++) {
                if (r == root) {
                    System.arraycopy(send, off, recv, recvOff + r * n, n);
                } else {
                    m.receiveFloats(r, recv, recvOff + r * n, n);
                }
            }
        } else {
            m.sendFloats(root, send, off, n);
        }
        m.transfer();
    }

    /**
     * Every member's {@code send[0, counts[rank])} to the root, landing at
     * {@code recv[offsets[r], offsets[r] + counts[r])} for rank r (counts and offsets agree
     * everywhere; only the root reads recv). Allocates nothing.
     */
    public void gatherV(int root, float[] send, int[] counts, float[] recv, int[] offsets) {
        m.beginOp("gather");
        if (rank == root) {
            for (int r = 0; r < size; r++) {
                if (r == root) {
                    System.arraycopy(send, 0, recv, offsets[r], counts[r]);
                } else {
                    m.receiveFloats(r, recv, offsets[r], counts[r]);
                }
            }
        } else {
            m.sendFloats(root, send, 0, counts[rank]);
        }
        m.transfer();
    }

    /**
     * Variable-length byte messages to the root: rank r's lands in {@code recv[r]} (each at most
     * its length), its length in {@code recvLengths[r]}. Only the root reads recv and recvLengths.
     */
    public void gatherBytes(int root, byte[] send, int len, byte[][] recv, int[] recvLengths) {
        m.beginOp("gather");
        if (rank == root) {
            for (int r = 0; r < size; r++) {
                if (r == root) {
                    if (recv[r].length < len) {
                        throw new IllegalArgumentException("gatherBytes: recv[" + r + "] is too small for " + len + " bytes");
                    }
                    System.arraycopy(send, 0, recv[r], 0, len);
                    recvLengths[r] = len;
                } else {
                    m.receiveBytes(r, recv[r], 0, recv[r].length);
                }
            }
        } else {
            m.sendBytes(root, send, 0, len);
        }
        m.transfer();
        if (rank == root) {
            for (int r = 0; r < size; r++) {
                if (r != root) {
                    recvLengths[r] = m.receivedBytes(r);
                }
            }
        }
    }
}
