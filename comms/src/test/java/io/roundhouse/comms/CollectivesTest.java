package io.roundhouse.comms;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Every collective for W = 2, 3, 4 over IPC and over UDP on loopback, with a real media driver. */
@Timeout(120)
class CollectivesTest {
    @TempDir
    Path aeron;

    static Stream<Arguments> groups() {
        return Stream.of(Transport.IPC, Transport.UDP).flatMap(t -> Stream.of(2, 3, 4).map(w -> Arguments.of(t, w)));
    }

    /** The value rank src sends to rank dst at position i: checkable anywhere. */
    static float value(int src, int dst, int i) {
        return src * 1_000_000f + dst * 10_000f + (i % 9_973);
    }

    /** Sizes from rank src to dst: zeros, small, and larger than a term's max message (512 KiB here). */
    static int count(int src, int dst, int round) {
        int[] sizes = {0, 1, 7, 1_000, 150_000, 0, 33};
        return sizes[(src * 3 + dst * 5 + round) % sizes.length];
    }

    @ParameterizedTest(name = "{0} W={1}")
    @MethodSource("groups")
    void allToAllOfRandomSizes(Transport t, int w) throws Exception {
        List<Boolean> ok = GroupHarness.run(GroupHarness.config(t, aeron), w, 0, c -> {
            int rank = c.member().rank();
            for (int round = 0; round < 3; round++) {
                int[] sendCounts = new int[w];
                int total = 0;
                for (int d = 0; d < w; d++) {
                    sendCounts[d] = count(rank, d, round);
                    total += sendCounts[d];
                }
                float[] send = new float[total + 3];
                int at = 3; // non-zero offsets on both sides
                for (int d = 0; d < w; d++) {
                    for (int i = 0; i < sendCounts[d]; i++) {
                        send[at + i] = value(rank, d, i);
                    }
                    at += sendCounts[d];
                }
                int[] recvCounts = new int[w];
                float[] recv = new float[600_000];
                int got;
                if (round == 1) {
                    // Off-heap on both sides (as from the pinned host buffers of a GPU backend).
                    got = c.allToAllCounts(sendCounts, recvCounts);
                    ByteBuffer sendBuf = offHeap(send);
                    ByteBuffer recvBuf = offHeap(recv);
                    c.allToAllV(sendBuf, 3, sendCounts, recvBuf, 5, recvCounts);
                    recvBuf.asFloatBuffer().get(0, recv);
                } else {
                    got = c.allToAll(send, 3, sendCounts, recv, 5, recvCounts);
                }
                at = 5;
                int expectTotal = 0;
                for (int s = 0; s < w; s++) {
                    assertEquals(count(s, rank, round), recvCounts[s], "count from rank " + s);
                    for (int i = 0; i < recvCounts[s]; i++) {
                        if (recv[at + i] != value(s, rank, i)) {
                            throw new AssertionError("rank " + rank + " round " + round + ": element " + i + " from rank "
                                    + s + " is " + recv[at + i] + ", expected " + value(s, rank, i));
                        }
                    }
                    at += recvCounts[s];
                    expectTotal += recvCounts[s];
                }
                assertEquals(expectTotal, got);
            }
            return true;
        });
        assertEquals(w, ok.size());
    }

    /**
     * A started all-to-all (even ranks: start, compute, finish; odd ranks: the blocking call)
     * delivers what the blocking one does, with messages larger than a peer's window (their sends
     * finish in finish); no other collective may run on a member meanwhile.
     */
    @ParameterizedTest(name = "{0} W={1}")
    @MethodSource("groups")
    void startedAllToAllFinishesLikeTheBlockingOne(Transport t, int w) throws Exception {
        List<Boolean> ok = GroupHarness.run(GroupHarness.config(t, aeron), w, 0, c -> {
            int rank = c.member().rank();
            for (int round = 0; round < 4; round++) {
                int[] sendCounts = new int[w];
                int[] recvCounts = new int[w];
                int total = 0;
                for (int d = 0; d < w; d++) {
                    sendCounts[d] = count(rank, d, round);
                    recvCounts[d] = count(d, rank, round);
                    total += sendCounts[d];
                }
                float[] send = new float[total];
                int at = 0;
                for (int d = 0; d < w; d++) {
                    for (int i = 0; i < sendCounts[d]; i++) {
                        send[at + i] = value(rank, d, i);
                    }
                    at += sendCounts[d];
                }
                ByteBuffer sendBuf = offHeap(send);
                ByteBuffer recvBuf = offHeap(new float[w * 150_000]);
                if (rank % 2 == 0) {
                    c.startAllToAllV(sendBuf, 0, sendCounts, recvBuf, 0, recvCounts);
                    IllegalStateException busy = assertThrows(IllegalStateException.class,
                            () -> c.allReduceSum(new float[4], 0, 4));
                    assertTrue(busy.getMessage().contains("started and not finished"), busy.getMessage());
                    Thread.sleep(round * 5L);  // the caller's computation
                    c.finish();
                } else {
                    c.allToAllV(sendBuf, 0, sendCounts, recvBuf, 0, recvCounts);
                }
                c.finish();  // nothing in flight: returns
                at = 0;
                for (int s = 0; s < w; s++) {
                    for (int i = 0; i < recvCounts[s]; i++) {
                        float v = recvBuf.getFloat(4 * (at + i));
                        if (v != value(s, rank, i)) {
                            throw new AssertionError("rank " + rank + " round " + round + ": element " + i
                                    + " from rank " + s + " is " + v + ", expected " + value(s, rank, i));
                        }
                    }
                    at += recvCounts[s];
                }
            }
            float[] after = {rank};
            c.allReduceSum(after, 0, 1);
            assertEquals(w * (w - 1) / 2f, after[0], "a collective after the started ones");
            return true;
        });
        assertEquals(w, ok.size());
    }

    /**
     * A started all-to-all awaited in parts (as a pipelined MoE layer takes each expert's rows): a
     * prefix of each source's block is in place once awaitReceived returns, before finish; with a
     * 64 KiB term every message outruns the peer's window, so awaiting must also push this member's
     * own sends (else two members awaiting each other would never finish).
     */
    @ParameterizedTest(name = "{0} W={1}")
    @MethodSource("groups")
    void awaitedPrefixesArriveBeforeTheStartedAllToAllFinishes(Transport t, int w) throws Exception {
        CommsConfig cfg = GroupHarness.config(t, aeron).withTerm(64 << 10, 1408);
        List<Boolean> ok = GroupHarness.run(cfg, w, 0, c -> {
            int rank = c.member().rank();
            int n = 40_000 + rank;  // 160 KiB blocks, of another size from each source
            int[] sendCounts = new int[w];
            int[] recvCounts = new int[w];
            float[] send = new float[w * (n + w)];
            int at = 0;
            for (int d = 0; d < w; d++) {
                sendCounts[d] = n;
                recvCounts[d] = 40_000 + d;
                for (int i = 0; i < n; i++) {
                    send[at + i] = value(rank, d, i);
                }
                at += n;
            }
            ByteBuffer recvBuf = offHeap(new float[w * (n + w)]);
            c.startAllToAllV(offHeap(send), 0, sendCounts, recvBuf, 0, recvCounts);
            for (int part = 1; part <= 4; part++) {
                int from = 0;
                for (int s = 0; s < w; s++) {
                    int prefix = recvCounts[s] * part / 4;
                    c.awaitReceived(s, prefix);
                    for (int i = 0; i < prefix; i++) {
                        float v = recvBuf.getFloat(4 * (from + i));
                        if (v != value(s, rank, i)) {
                            throw new AssertionError("rank " + rank + ": awaited element " + i + " from rank " + s
                                    + " is " + v + ", expected " + value(s, rank, i));
                        }
                    }
                    from += recvCounts[s];
                }
            }
            assertThrows(IllegalArgumentException.class, () -> c.awaitReceived((rank + 1) % w, 40_000 + w));
            c.finish();
            IllegalStateException outside = assertThrows(IllegalStateException.class,
                    () -> c.awaitReceived((rank + 1) % w, 1));
            assertTrue(outside.getMessage().contains("outside a started all-to-all"), outside.getMessage());
            return true;
        });
        assertEquals(w, ok.size());
    }

    /**
     * A held all-to-all (a pipelined MoE layer's combine, each expert's results sent as computed):
     * blocks leave only as far as they are released, in parts written after the start, through
     * windows smaller than the blocks; finish refuses to wait for what was never released.
     */
    @ParameterizedTest(name = "{0} W={1}")
    @MethodSource("groups")
    void aHeldAllToAllDeliversWhatItReleasesAsItGoes(Transport t, int w) throws Exception {
        CommsConfig cfg = GroupHarness.config(t, aeron).withTerm(64 << 10, 1408);
        List<Boolean> ok = GroupHarness.run(cfg, w, 0, c -> {
            int rank = c.member().rank();
            int n = 30_000;
            int[] counts = new int[w];
            java.util.Arrays.fill(counts, n);
            ByteBuffer send = offHeap(new float[w * n]);
            ByteBuffer recv = offHeap(new float[w * n]);
            c.startAllToAllVHeld(send, 0, counts, recv, 0, counts);
            IllegalStateException early = assertThrows(IllegalStateException.class, c::finish);
            assertTrue(early.getMessage().contains("released"), early.getMessage());
            for (int part = 1; part <= 3; part++) {
                for (int d = 0; d < w; d++) {
                    for (int i = n * (part - 1) / 3; i < n * part / 3; i++) {
                        send.putFloat(4 * (d * n + i), value(rank, d, i));  // written after the start
                    }
                    c.release(d, n * part / 3);
                }
                Thread.sleep(2);  // the caller's computation
            }
            int last = (rank + 1) % w;
            assertThrows(IllegalArgumentException.class, () -> c.release(last, n - 1));  // never less
            c.finish();
            for (int s = 0; s < w; s++) {
                for (int i = 0; i < n; i++) {
                    float v = recv.getFloat(4 * (s * n + i));
                    if (v != value(s, rank, i)) {
                        throw new AssertionError("rank " + rank + ": element " + i + " from rank " + s + " is " + v
                                + ", expected " + value(s, rank, i));
                    }
                }
            }
            return true;
        });
        assertEquals(w, ok.size());
    }

    @ParameterizedTest(name = "{0} W={1}")
    @MethodSource("groups")
    void allReduceIsCorrectAndBitIdentical(Transport t, int w) throws Exception {
        // Up to 4096 floats (or with W=2) the one-round direct sum, above it the ring (n < W would
        // leave some ring chunks empty; the ring is tested at 4097 with W=3 and 4).
        int[] sizes = {1, 3, 1_001, Collectives.DIRECT_MAX_FLOATS, Collectives.DIRECT_MAX_FLOATS + 1, 200_003};
        // results[run][rank][size]: two separate groups, to show run-to-run bit identity
        List<List<List<float[]>>> results = new java.util.ArrayList<>();
        for (int run = 0; run < 2; run++) {
            results.add(GroupHarness.run(GroupHarness.config(t, aeron), w, 0, c -> {
                List<float[]> out = new java.util.ArrayList<>();
                for (int n : sizes) {
                    float[] buf = new float[n + 2];
                    System.arraycopy(input(c.member().rank(), n), 0, buf, 2, n);
                    ByteBuffer off = offHeap(buf);
                    c.allReduceSum(buf, 2, n);
                    out.add(java.util.Arrays.copyOfRange(buf, 2, n + 2));
                    c.allReduceSum(off, 2, n);
                    float[] fromBuffer = new float[n];
                    off.asFloatBuffer().get(2, fromBuffer);
                    assertArrayEquals(out.get(out.size() - 1), fromBuffer, "n=" + n + ": the off-heap sum has the "
                            + "array's bits");
                }
                return out;
            }));
        }
        for (int k = 0; k < sizes.length; k++) {
            int n = sizes[k];
            double[] want = new double[n];
            for (int r = 0; r < w; r++) {
                float[] in = input(r, n);
                for (int i = 0; i < n; i++) {
                    want[i] += in[i];
                }
            }
            float[] got = results.get(0).get(0).get(k);
            for (int i = 0; i < n; i++) {
                if (Math.abs(want[i] - got[i]) > 1e-4 * Math.max(1, Math.abs(want[i]))) {
                    throw new AssertionError("element " + i + " of " + n + ": " + got[i] + ", expected " + want[i]);
                }
            }
            for (int run = 0; run < 2; run++) {
                for (int r = 0; r < w; r++) {
                    assertArrayEquals(got, results.get(run).get(r).get(k),
                            "n=" + n + ": run " + run + " rank " + r + " holds the same bits as run 0 rank 0");
                }
            }
        }
    }

    /**
     * {@link Transport#AUTO} across two "hosts" of this machine (127.0.0.1 and 127.0.0.2, each with
     * its own media driver): IPC between the two members of a host, UDP between hosts. An all-to-all
     * of every size and an all-reduce give what they give over UDP alone, to the bit.
     */
    @Test
    void autoUsesIpcWithinAHostAndUdpBetweenHosts() throws Exception {
        int w = 4;
        int n = Collectives.DIRECT_MAX_FLOATS + 5;
        List<String> eps = new java.util.ArrayList<>();
        for (int r = 0; r < w; r++) {
            eps.add((r < 2 ? "127.0.0.1:" : "127.0.0.2:") + GroupHarness.freeUdpPort());
        }
        CommsConfig cfg = GroupHarness.config(Transport.AUTO, aeron);
        List<float[]> sums = new java.util.ArrayList<>();
        try (EmbeddedMediaDriver a = EmbeddedMediaDriver.acquire(cfg, GroupHarness.jobKey("auto-a"), 2, w, 0);
             EmbeddedMediaDriver b = EmbeddedMediaDriver.acquire(cfg, GroupHarness.jobKey("auto-b"), 2, w, 0)) {
            java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(w);
            try {
                List<java.util.concurrent.Future<float[]>> futures = new java.util.ArrayList<>();
                for (int r = 0; r < w; r++) {
                    int rank = r;
                    futures.add(pool.submit(() -> {
                        try (Member m = new Member(cfg, rank < 2 ? a : b, rank, eps)) {
                            m.connect();
                            int peer = rank ^ 1;   // the other member of this host
                            assertTrue(m.describe(peer).contains("ipc 127.0.0." + (rank < 2 ? 1 : 2)), m.describe(peer));
                            assertTrue(m.describe(rank ^ 2).startsWith("rank " + (rank ^ 2) + " (udp "), m.describe(rank ^ 2));
                            Collectives c = new Collectives(m);
                            for (int round = 0; round < 3; round++) {
                                int[] sendCounts = new int[w];
                                int total = 0;
                                for (int d = 0; d < w; d++) {
                                    sendCounts[d] = count(rank, d, round);
                                    total += sendCounts[d];
                                }
                                float[] send = new float[total];
                                int at = 0;
                                for (int d = 0; d < w; d++) {
                                    for (int i = 0; i < sendCounts[d]; i++) {
                                        send[at + i] = value(rank, d, i);
                                    }
                                    at += sendCounts[d];
                                }
                                int[] recvCounts = new int[w];
                                float[] recv = new float[600_000];
                                c.allToAll(send, 0, sendCounts, recv, 0, recvCounts);
                                at = 0;
                                for (int s = 0; s < w; s++) {
                                    assertEquals(count(s, rank, round), recvCounts[s], "count from rank " + s);
                                    for (int i = 0; i < recvCounts[s]; i++) {
                                        if (recv[at + i] != value(s, rank, i)) {
                                            throw new AssertionError("rank " + rank + " round " + round + ": element "
                                                    + i + " from rank " + s + " is " + recv[at + i]);
                                        }
                                    }
                                    at += recvCounts[s];
                                }
                            }
                            float[] buf = input(rank, n);
                            c.allReduceSum(buf, 0, n);
                            return buf;
                        }
                    }));
                }
                for (java.util.concurrent.Future<float[]> f : futures) {
                    sums.add(f.get(60, java.util.concurrent.TimeUnit.SECONDS));
                }
            } finally {
                pool.shutdownNow();
            }
        }
        List<float[]> udp = GroupHarness.run(GroupHarness.config(Transport.UDP, aeron), w, 0, c -> {
            float[] buf = input(c.member().rank(), n);
            c.allReduceSum(buf, 0, n);
            return buf;
        });
        for (int r = 0; r < w; r++) {
            assertArrayEquals(udp.get(0), sums.get(r), "rank " + r + ": the all-reduce over AUTO has UDP's bits");
        }
    }

    /**
     * The two-level all-to-all over "hosts" made of loopback addresses (their ranks interleaved, so
     * a host's ranks are not contiguous): every block lands where the flat all-to-all puts it, for
     * 2 hosts × 2 and 3 hosts × 2, sizes from zero to above a term's largest message; hosts of
     * unequal sizes fall back to the flat one.
     */
    @ParameterizedTest(name = "hosts {0}")
    @org.junit.jupiter.params.provider.ValueSource(strings = {"1,2,1,2", "1,2,3,1,2,3", "1,1,2"})
    void twoLevelAllToAllPutsEveryBlockWhereTheFlatOneDoes(String hostsByRank) throws Exception {
        String[] hostOf = hostsByRank.split(",");
        int w = hostOf.length;
        List<String> eps = new java.util.ArrayList<>();
        for (int r = 0; r < w; r++) {
            eps.add("127.0.0." + hostOf[r] + ":" + GroupHarness.freeUdpPort());
        }
        CommsConfig cfg = GroupHarness.config(Transport.UDP, aeron);
        try (EmbeddedMediaDriver driver = EmbeddedMediaDriver.acquire(cfg, GroupHarness.jobKey("2d"), w, w, 0)) {
            GroupHarness.runOn(cfg, driver, eps, w, c -> {
                int rank = c.member().rank();
                for (int round = 0; round < 3; round++) {
                    int[] matrix = new int[w * w];
                    for (int s = 0; s < w; s++) {
                        for (int d = 0; d < w; d++) {
                            matrix[s * w + d] = count(s, d, round);
                        }
                    }
                    int total = 0;
                    for (int d = 0; d < w; d++) {
                        total += matrix[rank * w + d];
                    }
                    float[] send = new float[total + 2];
                    int at = 2;
                    for (int d = 0; d < w; d++) {
                        for (int i = 0; i < matrix[rank * w + d]; i++) {
                            send[at + i] = value(rank, d, i);
                        }
                        at += matrix[rank * w + d];
                    }
                    float[] recv = new float[700_000];
                    ByteBuffer sendBuf = offHeap(send);
                    ByteBuffer recvBuf = offHeap(recv);
                    if (round == 1) {
                        c.allToAllV2D(sendBuf, 2, recvBuf, 1, matrix);
                        recvBuf.asFloatBuffer().get(0, recv);
                    } else {
                        c.allToAllV2D(send, 2, recv, 1, matrix);
                    }
                    at = 1;
                    for (int s = 0; s < w; s++) {
                        for (int i = 0; i < matrix[s * w + rank]; i++) {
                            if (recv[at + i] != value(s, rank, i)) {
                                throw new AssertionError("rank " + rank + " round " + round + ": element " + i
                                        + " from rank " + s + " is " + recv[at + i] + ", expected " + value(s, rank, i));
                            }
                        }
                        at += matrix[s * w + rank];
                    }
                }
                return true;
            });
        }
    }

    /** UDP channels with the socket buffers and a 1408-byte mtu asked for (what a 1500-byte network takes). */
    @Test
    void udpWithSocketBuffersAndASmallMtu() throws Exception {
        int n = 50_000;
        CommsConfig cfg = GroupHarness.config(Transport.UDP, aeron).withSocketBuffer(1 << 20)
                .withTerm(CommsConfig.DEFAULT_TERM_LENGTH, 1408);
        List<float[]> sums = GroupHarness.run(cfg, 3, 0, c -> {
            float[] buf = input(c.member().rank(), n);
            c.allReduceSum(buf, 0, n);
            return buf;
        });
        List<float[]> plain = GroupHarness.run(GroupHarness.config(Transport.UDP, aeron), 3, 0, c -> {
            float[] buf = input(c.member().rank(), n);
            c.allReduceSum(buf, 0, n);
            return buf;
        });
        for (int r = 0; r < 3; r++) {
            assertArrayEquals(plain.get(0), sums.get(r), "rank " + r);
        }
    }

    /** A direct (off-heap) copy of {@code a}, in native byte order. */
    static ByteBuffer offHeap(float[] a) {
        ByteBuffer b = ByteBuffer.allocateDirect(4 * a.length).order(ByteOrder.nativeOrder());
        b.asFloatBuffer().put(a);
        return b;
    }

    @ParameterizedTest(name = "{0} W={1}")
    @MethodSource("groups")
    void buffersThatAreTooShortAreRefused(Transport t, int w) throws Exception {
        List<Boolean> ok = GroupHarness.run(GroupHarness.config(t, aeron), w, 0, c -> {
            int[] counts = new int[w];
            java.util.Arrays.fill(counts, 4);
            ByteBuffer small = offHeap(new float[4 * w - 1]);
            ByteBuffer big = offHeap(new float[4 * w]);
            IndexOutOfBoundsException e = org.junit.jupiter.api.Assertions.assertThrows(IndexOutOfBoundsException.class,
                    () -> c.allToAllV(small, 0, counts, big, 0, counts));
            assertTrue(e.getMessage().contains("allToAllV: send"), e.getMessage());
            org.junit.jupiter.api.Assertions.assertThrows(IndexOutOfBoundsException.class,
                    () -> c.allReduceSum(small, 1, 4 * w - 1));
            IllegalArgumentException order = org.junit.jupiter.api.Assertions.assertThrows(
                    IllegalArgumentException.class, () -> c.allReduceSum(ByteBuffer.allocate(16), 0, 4));
            assertTrue(order.getMessage().contains("native order"), order.getMessage());
            return true;
        });
        assertEquals(w, ok.size());
    }

    static float[] input(int rank, int n) {
        Random r = new Random(rank * 7919L + n);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) r.nextGaussian() * (1 + rank);
        }
        return v;
    }

    @ParameterizedTest(name = "{0} W={1}")
    @MethodSource("groups")
    void broadcastGatherBarrier(Transport t, int w) throws Exception {
        List<Boolean> ok = GroupHarness.run(GroupHarness.config(t, aeron), w, 0, c -> {
            int rank = c.member().rank();
            int root = w - 1;
            float[] data = new float[100_000];
            if (rank == root) {
                for (int i = 0; i < data.length; i++) {
                    data[i] = i * 0.5f;
                }
            }
            c.broadcast(root, data, 0, data.length);
            for (int i = 0; i < data.length; i++) {
                assertEquals(i * 0.5f, data[i], 0f);
            }
            c.barrier();
            float[] mine = {rank, rank + 0.25f};
            float[] all = new float[2 * w];
            c.gather(0, mine, 0, 2, all, 0);
            if (rank == 0) {
                for (int r = 0; r < w; r++) {
                    assertEquals(r, all[2 * r], 0f);
                    assertEquals(r + 0.25f, all[2 * r + 1], 0f);
                }
            }
            byte[] msg = new byte[64];
            int len = 0;
            if (rank == 0) {
                byte[] text = "step 42: checkpoint".getBytes(java.nio.charset.StandardCharsets.UTF_8);
                System.arraycopy(text, 0, msg, 0, text.length);
                len = text.length;
            }
            int got = c.broadcastBytes(0, msg, 0, rank == 0 ? len : msg.length);
            assertEquals("step 42: checkpoint", new String(msg, 0, got, java.nio.charset.StandardCharsets.UTF_8));
            byte[][] recv = new byte[w][16];
            int[] lens = new int[w];
            byte[] report = ("r" + rank).repeat(rank).getBytes(java.nio.charset.StandardCharsets.UTF_8);
            c.gatherBytes(1, report, report.length, recv, lens);
            if (rank == 1) {
                for (int r = 0; r < w; r++) {
                    assertEquals(("r" + r).repeat(r), new String(recv[r], 0, lens[r],
                            java.nio.charset.StandardCharsets.UTF_8));
                }
            }
            c.barrier();
            assertTrue(c.member().counters().framesSent > 0);
            return true;
        });
        assertEquals(w, ok.size());
    }
    /**
     * Point-to-point rounds: a ring shift (every member sends and receives), one pair talking
     * while the others pass -1 (and then a collective still lines up), a one-way stream of rounds
     * that the receiver takes late; a member cannot pair with itself.
     */
    @ParameterizedTest(name = "{0} W={1}")
    @MethodSource("groups")
    void sendRecvPairsMembers(Transport t, int w) throws Exception {
        List<Boolean> ok = GroupHarness.run(GroupHarness.config(t, aeron), w, 0, c -> {
            int rank = c.member().rank();
            float[] send = input(rank, 50_000);
            float[] recv = new float[50_000];
            int next = (rank + 1) % w;
            int prev = (rank + w - 1) % w;
            c.sendRecv(next, send, 0, send.length, prev, recv, 0, recv.length);
            assertArrayEquals(input(prev, 50_000), recv);
            // 0 streams 20 rounds to the last rank, which sleeps first; the others sit them out.
            int last = w - 1;
            for (int k = 0; k < 20; k++) {
                if (rank == last && k == 0) {
                    Thread.sleep(50);
                }
                send[0] = k;
                c.sendRecv(rank == 0 ? last : -1, send, 0, 1000, rank == last ? 0 : -1, recv, 0, 1000);
                if (rank == last) {
                    assertEquals(k, recv[0], 0f);
                }
            }
            float[] sum = {1};
            c.allReduceSum(sum, 0, 1);
            assertEquals(w, sum[0], 0f);
            IllegalArgumentException self = assertThrows(IllegalArgumentException.class,
                    () -> c.sendRecv(rank, send, 0, 1, -1, recv, 0, 0));
            assertTrue(self.getMessage().contains("another member's rank"), self.getMessage());
            return true;
        });
        assertEquals(w, ok.size());
    }
}
