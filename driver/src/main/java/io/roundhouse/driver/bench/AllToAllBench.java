package io.roundhouse.driver.bench;

import io.roundhouse.comms.Collectives;
import io.roundhouse.comms.CommsConfig;
import io.roundhouse.comms.EmbeddedMediaDriver;
import io.roundhouse.comms.IdleChoice;
import io.roundhouse.comms.Member;
import io.roundhouse.comms.Transport;
import java.io.IOException;
import java.io.PrintWriter;
import java.net.DatagramSocket;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.DatagramChannel;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * All-to-all throughput and round-trip latency of two members in this JVM, over IPC and over UDP on
 * loopback, with baselines measured in the same run: memcpy of 64 MiB (IPC copies twice: into the
 * log and out of it, so memcpy/2 is its ceiling) and raw Java UDP between two sockets with the
 * datagram size our frames use.
 *
 * <p>Two rates: what one member sends to its peer per second (NCCL's "bus bandwidth" for an
 * all-to-all of W = 2), and the group's total (both members send at once). The raw UDP baseline
 * moves bytes one way with two threads (the whole machine), so the group total is the comparable
 * figure there; a second raw baseline moves them both ways at once (two flows, four threads: the
 * all-to-all's own pattern), against which the per-member rate compares. memcpy is one thread, so
 * for IPC the per-member rate is the strict one.
 */
final class AllToAllBench {
    private static final int[] MESSAGE_BYTES = {64 << 10, 1 << 20, 8 << 20};
    private final double seconds;
    private final java.util.function.UnaryOperator<CommsConfig> tune;

    AllToAllBench(double seconds, java.util.function.UnaryOperator<CommsConfig> tune) {
        this.seconds = seconds;
        this.tune = tune;
    }

    Map<String, Object> run(PrintWriter out) throws Exception {
        Map<String, Object> v = new LinkedHashMap<>();
        double memcpy = memcpyGBps();
        v.put("memcpy64MiBGBps", memcpy);
        out.printf("%-52s %9.2f GB/s%n", "memcpy 64 MiB", memcpy);
        for (Transport t : new Transport[] {Transport.IPC, Transport.UDP}) {
            CommsConfig cfg = tune.apply(CommsConfig.defaults(t, CommsConfig.randomSessionToken()));
            if (t == Transport.IPC) {
                double ring = handoffGBps(cfg.termLengthBytes(), cfg.mtuBytes() - 64);
                v.put("crossCoreRingGBps", ring);
                out.printf("%-52s %9.2f GB/s%n", String.format("two-thread ring hand-off, %d KiB ring", cfg.termLengthBytes() >> 10),
                        ring);
            }
            String idle = cfg.idle().equals("auto")
                    ? "auto: " + IdleChoice.idleFor(cfg, 0, t == Transport.IPC ? List.of("ipc", "ipc")
                            : List.of("127.0.0.1:1", "127.0.0.1:2")) + " on " + Runtime.getRuntime().availableProcessors()
                            + " cores"
                    : cfg.idle();
            v.put(t.name().toLowerCase() + "Idle", idle);
            out.printf("%s: term %d KiB, mtu %d, driver threading %s, idle %s%n", t, cfg.termLengthBytes() >> 10,
                    cfg.mtuBytes(), cfg.driverThreading(), idle);
            int datagram = cfg.mtuBytes() - 32;
            if (t == Transport.UDP) {
                double raw = rawUdpGBps(datagram);
                v.put("rawUdpGBps", raw);
                out.printf("%-52s %9.2f GB/s%n", "raw Java UDP loopback, " + datagram + "-byte datagrams", raw);
                double exchange = rawUdpExchangeGBps(datagram);
                v.put("rawUdpExchangeGBps", exchange);
                out.printf("%-52s %9.2f GB/s per direction%n", "raw Java UDP both ways at once (4 threads)", exchange);
            }
            Map<String, Double> r = measure(cfg);
            r.forEach((k, x) -> v.put(t.name().toLowerCase() + k, x));
            for (int bytes : MESSAGE_BYTES) {
                double gbps = r.get("AllToAll" + (bytes >> 10) + "KiBGBps");
                double base = t == Transport.IPC ? memcpy / 2 : (double) v.get("rawUdpGBps");
                String name = t == Transport.IPC ? "memcpy/2" : "raw UDP";
                out.printf("%-44s %6.2f GB/s per member (%.2f of %s), group %6.2f GB/s (%.2f)%s%n",
                        String.format("all-to-all %s W=2, %d KiB per peer", t, bytes >> 10), gbps, gbps / base, name,
                        2 * gbps, 2 * gbps / base, t == Transport.IPC
                                ? String.format(", %.2f of the ring hand-off", 2 * gbps / (double) v.get("crossCoreRingGBps"))
                                : String.format(", %.2f of raw UDP both ways", gbps / (double) v.get("rawUdpExchangeGBps")));
            }
            out.printf("%-52s %9.1f us p50   %.1f us p99%n", "round trip " + t + " (16 bytes)",
                    r.get("RttP50Us"), r.get("RttP99Us"));
            if (t == Transport.UDP) {
                double[] raw = rawUdpRoundTripUs();
                v.put("rawUdpRttP50Us", raw[0]);
                v.put("rawUdpRttP99Us", raw[1]);
                out.printf("%-52s %9.1f us p50   %.1f us p99   (comms: %.1fx at p50, its p99 %.1fx its p50)%n",
                        "raw Java UDP ping-pong (16 bytes, spinning)", raw[0], raw[1], r.get("RttP50Us") / raw[0],
                        r.get("RttP99Us") / r.get("RttP50Us"));
            }
        }
        twoLevel(out, v);
        return v;
    }

    private static final int[] TWO_LEVEL_BYTES = {1 << 10, 16 << 10, 256 << 10, 1 << 20};

    /**
     * The two-level all-to-all against the flat one: W = 4 over UDP as two "hosts" of this machine
     * (127.0.0.1 and 127.0.0.2, two members each), the same bytes per peer, microseconds per
     * all-to-all. Loopback has no network between the "hosts", so this prices the two-level
     * algorithm's extra round and copies against its fewer messages, not a real network's latency.
     */
    private void twoLevel(PrintWriter out, Map<String, Object> v) throws Exception {
        int w = 4;
        CommsConfig cfg = tune.apply(CommsConfig.defaults(Transport.UDP, CommsConfig.randomSessionToken()));
        List<String> eps = new ArrayList<>();
        for (int r = 0; r < w; r++) {
            eps.add("127.0.0." + (1 + r % 2) + ":" + freePort());
        }
        String job = "bench2d-" + ProcessHandle.current().pid();
        List<Map<String, Double>> results = new ArrayList<>();
        try (EmbeddedMediaDriver driver = EmbeddedMediaDriver.acquire(cfg, job, w, w, 0)) {
            ExecutorService pool = Executors.newFixedThreadPool(w);
            try {
                List<Future<Map<String, Double>>> f = new ArrayList<>();
                for (int r = 0; r < w; r++) {
                    int rank = r;
                    f.add(pool.submit(() -> {
                        try (Member m = new Member(cfg, driver, rank, eps)) {
                            m.connect();
                            return twoLevelLoop(new Collectives(m), w);
                        }
                    }));
                }
                for (Future<Map<String, Double>> x : f) {
                    results.add(x.get(10, TimeUnit.MINUTES));
                }
            } finally {
                pool.shutdownNow();
            }
        }
        Map<String, Double> r = results.get(0);
        for (int bytes : TWO_LEVEL_BYTES) {
            double flat = r.get("flat" + bytes);
            double two = r.get("twoLevel" + bytes);
            v.put("allToAllFlatW4UdpTwoHosts" + (bytes >> 10) + "KiBUs", flat);
            v.put("allToAllTwoLevelW4UdpTwoHosts" + (bytes >> 10) + "KiBUs", two);
            out.printf("%-52s flat %9.1f us   two-level %9.1f us (%.2fx)%n",
                    String.format("all-to-all UDP W=4 on 2 loopback hosts, %d KiB/peer", bytes >> 10), flat, two,
                    two / flat);
        }
    }

    /** Both variants at each size, every member in lock step; rank 0's median microseconds per op. */
    private Map<String, Double> twoLevelLoop(Collectives c, int w) {
        Map<String, Double> r = new LinkedHashMap<>();
        for (int bytes : TWO_LEVEL_BYTES) {
            int floats = bytes / 4;
            float[] send = new float[w * floats];
            float[] recv = new float[w * floats];
            int[] counts = new int[w];
            Arrays.fill(counts, floats);
            int[] matrix = new int[w * w];
            Arrays.fill(matrix, floats);
            int reps = Math.max(20, (int) Math.min(2_000, 2e7 / Math.max(1, bytes)));
            for (String variant : new String[] {"flat", "twoLevel"}) {
                long[] t = new long[reps];
                c.barrier();
                for (int i = -5; i < reps; i++) {
                    long t0 = System.nanoTime();
                    if (variant.equals("flat")) {
                        c.allToAllV(send, 0, counts, recv, 0, counts);
                    } else {
                        c.allToAllV2D(send, 0, recv, 0, matrix);
                    }
                    if (i >= 0) {
                        t[i] = System.nanoTime() - t0;
                    }
                }
                Arrays.sort(t);
                r.put(variant + bytes, t[reps / 2] / 1e3);
            }
        }
        return r;
    }

    private Map<String, Double> measure(CommsConfig cfg) throws Exception {
        List<String> eps = cfg.transport() == Transport.IPC ? List.of("ipc", "ipc")
                : List.of("127.0.0.1:" + freePort(), "127.0.0.1:" + freePort());
        String job = "bench-" + ProcessHandle.current().pid() + "-" + cfg.transport().name().toLowerCase();
        Map<String, Double> results = new LinkedHashMap<>();
        try (EmbeddedMediaDriver driver = EmbeddedMediaDriver.acquire(cfg, job, 2, 2, 0)) {
            ExecutorService pool = Executors.newFixedThreadPool(2);
            try {
                List<Future<Map<String, Double>>> f = new ArrayList<>();
                for (int r = 0; r < 2; r++) {
                    int rank = r;
                    f.add(pool.submit(() -> {
                        try (Member m = new Member(cfg, driver, rank, eps)) {
                            m.connect();
                            return memberLoop(new Collectives(m));
                        }
                    }));
                }
                results.putAll(f.get(0).get(10, TimeUnit.MINUTES));
                f.get(1).get(10, TimeUnit.MINUTES);
            } finally {
                pool.shutdownNow();
            }
        }
        return results;
    }

    /** Runs on both members in lock step; rank 0's timings are reported. */
    private Map<String, Double> memberLoop(Collectives c) {
        Map<String, Double> r = new LinkedHashMap<>();
        int rank = c.member().rank();
        for (int bytes : MESSAGE_BYTES) {
            int floats = bytes / 4;
            float[] send = new float[2 * floats];
            float[] recv = new float[2 * floats];
            int[] sendCounts = {floats, floats};
            int[] recvCounts = {floats, floats};
            c.allToAllCounts(sendCounts, recvCounts);
            // Both members agree on the repetition count: rank 0 decides from a timed warm-up.
            float[] reps = {0};
            long t0 = System.nanoTime();
            int warm = 0;
            while (true) { // rank 0's clock decides for both, through the broadcast
                c.allToAllV(send, 0, sendCounts, recv, 0, recvCounts);
                warm++;
                float[] stop = {System.nanoTime() - t0 >= seconds * 0.2e9 && warm >= 3 ? 1 : 0};
                c.broadcast(0, stop, 0, 1);
                if (stop[0] == 1) {
                    break;
                }
            }
            double perOp = (System.nanoTime() - t0) / 1e9 / warm;
            reps[0] = (float) Math.max(5, Math.ceil(seconds / perOp));
            c.broadcast(0, reps, 0, 1);
            c.barrier();
            long start = System.nanoTime();
            for (int i = 0; i < (int) reps[0]; i++) {
                c.allToAllV(send, 0, sendCounts, recv, 0, recvCounts);
            }
            double s = (System.nanoTime() - start) / 1e9;
            // Each member sends `bytes` to its peer and receives as many per all-to-all.
            r.put("AllToAll" + (bytes >> 10) + "KiBGBps", bytes * reps[0] / s / 1e9);
        }
        float[] ping = new float[4];
        int n = 20_000;
        long[] rtt = new long[n];
        for (int i = -2_000; i < n; i++) {
            long t = System.nanoTime();
            c.broadcast(0, ping, 0, 4);
            c.broadcast(1, ping, 0, 4);
            if (i >= 0) {
                rtt[i] = System.nanoTime() - t;
            }
        }
        Arrays.sort(rtt);
        r.put("RttP50Us", rtt[n / 2] / 1e3);
        r.put("RttP99Us", rtt[(int) (n * 0.99)] / 1e3);
        if (rank == 1) {
            return Map.of();
        }
        return r;
    }

    private static int freePort() throws IOException {
        try (DatagramSocket s = new DatagramSocket(0)) {
            return s.getLocalPort();
        }
    }

    private double memcpyGBps() {
        byte[] a = new byte[64 << 20];
        byte[] b = new byte[64 << 20];
        Arrays.fill(a, (byte) 1);
        System.arraycopy(a, 0, b, 0, a.length);
        long start = System.nanoTime();
        int n = 0;
        while (System.nanoTime() - start < seconds * 1e9 || n < 3) {
            System.arraycopy(a, 0, b, 0, a.length);
            n++;
        }
        return (double) a.length * n / ((System.nanoTime() - start) / 1e9) / 1e9;
    }

    /**
     * The floor for moving bytes between two cores through shared memory: one thread copies
     * frames into a ring the size of a term, another copies them out, spinning on two positions.
     * memcpy runs on one core with both buffers its own; this pays what IPC pays, the hand-off of
     * every cache line from one core to the other.
     */
    private double handoffGBps(int ringBytes, int frame) throws InterruptedException {
        byte[] ring = new byte[ringBytes];
        int slots = ringBytes / frame;
        byte[] src = new byte[8 << 20];
        byte[] dst = new byte[8 << 20];
        java.util.concurrent.atomic.AtomicLong head = new java.util.concurrent.atomic.AtomicLong();
        java.util.concurrent.atomic.AtomicLong tail = new java.util.concurrent.atomic.AtomicLong();
        long deadline = System.nanoTime() + (long) (seconds * 1e9);
        java.util.concurrent.atomic.AtomicBoolean done = new java.util.concurrent.atomic.AtomicBoolean();
        long[] moved = {0};
        Thread consumer = new Thread(() -> {
            long t = 0;
            while (!done.get() || t < head.get()) {
                if (t < head.get()) {
                    System.arraycopy(ring, (int) (t % slots) * frame, dst, (int) (t % ((8 << 20) / frame)) * frame, frame);
                    t++;
                    tail.set(t);
                } else {
                    Thread.onSpinWait();
                }
            }
            moved[0] = t;
        });
        long start = System.nanoTime();
        consumer.start();
        long h = 0;
        while (System.nanoTime() < deadline) {
            if (h - tail.get() < slots - 1) {
                System.arraycopy(src, (int) (h % ((8 << 20) / frame)) * frame, ring, (int) (h % slots) * frame, frame);
                h++;
                head.set(h);
            } else {
                Thread.onSpinWait();
            }
        }
        done.set(true);
        consumer.join();
        return (double) moved[0] * frame / ((System.nanoTime() - start) / 1e9) / 1e9;
    }

    /** One sender thread, one receiver thread, blocking DatagramChannels on loopback. */
    /**
     * The floor for a UDP round trip: two threads ping-pong a 16-byte datagram over loopback, each
     * spinning on a non-blocking channel (no media driver, no frames); p50 and p99 in µs.
     */
    private double[] rawUdpRoundTripUs() throws Exception {
        try (DatagramChannel a = DatagramChannel.open(); DatagramChannel b = DatagramChannel.open()) {
            a.bind(new InetSocketAddress("127.0.0.1", 0));
            b.bind(new InetSocketAddress("127.0.0.1", 0));
            a.connect(b.getLocalAddress());
            b.connect(a.getLocalAddress());
            a.configureBlocking(false);
            b.configureBlocking(false);
            int rounds = (int) Math.max(2_000, Math.min(200_000, seconds * 50_000));
            Thread echo = new Thread(() -> {
                ByteBuffer buf = ByteBuffer.allocateDirect(64);
                try {
                    for (int i = 0; i < rounds; i++) {
                        buf.clear();
                        while (b.read(buf) <= 0) {
                            Thread.onSpinWait();
                        }
                        buf.flip();
                        b.write(buf);
                    }
                } catch (IOException e) {
                    // closed at the end
                }
            }, "raw-udp-echo");
            echo.setDaemon(true);
            echo.start();
            ByteBuffer buf = ByteBuffer.allocateDirect(64);
            long[] t = new long[rounds];
            long deadline = System.nanoTime() + 60_000_000_000L;
            int done = 0;
            for (; done < rounds && System.nanoTime() < deadline; done++) {
                long t0 = System.nanoTime();
                buf.clear().limit(16);
                a.write(buf);
                buf.clear();
                while (a.read(buf) <= 0) {
                    Thread.onSpinWait();
                }
                t[done] = System.nanoTime() - t0;
            }
            a.close();
            b.close();
            echo.join(1_000);
            long[] kept = Arrays.copyOfRange(t, done / 10, done);  // the first tenth warms up
            Arrays.sort(kept);
            return new double[] {kept[kept.length / 2] / 1e3, kept[(int) (kept.length * 0.99)] / 1e3};
        }
    }

    /** Raw Java UDP one way: a sender and a receiver thread (the whole machine on one flow). */
    private double rawUdpGBps(int datagram) throws Exception {
        return rawUdpFlowsGBps(datagram, 1);
    }

    /**
     * Raw Java UDP in the all-to-all's pattern at W = 2: two flows at once, one each way (four
     * threads on the machine, as the two members and the media driver share it).
     */
    private double rawUdpExchangeGBps(int datagram) throws Exception {
        return rawUdpFlowsGBps(datagram, 2);
    }

    /**
     * {@code n} flows of {@code datagram}-byte datagrams on loopback at once, each with a sender and
     * a receiver thread, for the bench's seconds; the mean rate per flow of what arrived (loopback
     * drops what a receiver could not keep up with).
     */
    private double rawUdpFlowsGBps(int datagram, int n) throws Exception {
        List<DatagramChannel> channels = new ArrayList<>();
        List<Thread> receivers = new ArrayList<>();
        List<Thread> senders = new ArrayList<>();
        long[] received = {0};
        long end = System.nanoTime() + (long) (seconds * 1e9);
        try {
            for (int f = 0; f < n; f++) {
                DatagramChannel rx = DatagramChannel.open();
                channels.add(rx);
                DatagramChannel tx = DatagramChannel.open();
                channels.add(tx);
                rx.setOption(java.net.StandardSocketOptions.SO_RCVBUF, 4 << 20);
                tx.setOption(java.net.StandardSocketOptions.SO_SNDBUF, 4 << 20);
                rx.bind(new InetSocketAddress("127.0.0.1", 0));
                tx.connect(rx.getLocalAddress());
                receivers.add(new Thread(() -> {
                    ByteBuffer buf = ByteBuffer.allocateDirect(65536);
                    try {
                        while (!Thread.currentThread().isInterrupted()) {
                            buf.clear();
                            rx.receive(buf);
                            synchronized (received) {
                                received[0] += buf.position();
                            }
                        }
                    } catch (IOException e) {
                        // closed at the end
                    }
                }));
                senders.add(new Thread(() -> {
                    ByteBuffer out = ByteBuffer.allocateDirect(datagram);
                    try {
                        while (System.nanoTime() < end) {
                            out.clear();
                            tx.write(out);
                        }
                    } catch (IOException e) {
                        // closed at the end
                    }
                }));
            }
            long start = System.nanoTime();
            receivers.forEach(Thread::start);
            senders.forEach(Thread::start);
            for (Thread t : senders) {
                t.join();
            }
            double s = (System.nanoTime() - start) / 1e9;
            Thread.sleep(50);
            long got;
            synchronized (received) {
                got = received[0];
            }
            return got / (double) n / s / 1e9;
        } finally {
            receivers.forEach(Thread::interrupt);
            for (DatagramChannel c : channels) {
                c.close();
            }
            for (Thread t : receivers) {
                t.join(1_000);
            }
        }
    }
}
