package io.roundhouse.comms;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.aeron.ExclusivePublication;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Dead, stalled, absent and lying peers become named errors within the timeout; loss is survived. */
@Timeout(120)
class FailureModesTest {
    @TempDir
    Path aeron;

    /** What every member of the killed-peer tests runs: all-to-alls and all-reduces, round after round. */
    static int workLoop(Collectives c, int from, int rounds) {
        int w = c.member().size();
        int rank = c.member().rank();
        float[] send = new float[w * 50_000];
        float[] recv = new float[w * 50_000];
        int[] sendCounts = new int[w];
        int[] recvCounts = new int[w];
        java.util.Arrays.fill(sendCounts, 50_000);
        float[] grads = new float[300_000];
        for (int round = from; round < rounds; round++) {
            java.util.Arrays.fill(send, rank + round);
            c.allToAll(send, 0, sendCounts, recv, 0, recvCounts);
            for (int s = 0; s < w; s++) {
                if (recv[s * 50_000] != s + round) {
                    throw new AssertionError("round " + round + " on rank " + rank + ": from rank " + s + " got " + recv[s * 50_000] + " (counts " + java.util.Arrays.toString(recvCounts) + ")");
                }
            }
            java.util.Arrays.fill(grads, 1f);
            c.allReduceSum(grads, 0, grads.length);
            if (grads[grads.length - 1] != w) {
                throw new AssertionError("round " + round + ": all-reduce gave " + grads[grads.length - 1]);
            }
        }
        return rounds - from;
    }

    @ParameterizedTest
    @EnumSource(Transport.class)
    void aPeerKilledMidRunIsNamedWithinTheTimeout(Transport t) throws Exception {
        int w = 3;
        long token = 0xC0FFEEL;
        CommsConfig cfg = CommsConfig.defaults(t, token).withTimeouts(20_000, 2_000).withAeronDirBase(aeron);
        List<String> eps = GroupHarness.endpoints(t, w);
        String jobKey = GroupHarness.jobKey("kill");
        try (EmbeddedMediaDriver driver = EmbeddedMediaDriver.acquire(cfg, jobKey, 2, w, 0)) {
            List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                    "--add-exports", "java.base/jdk.internal.misc=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                    PeerMain.class.getName(), t.name(), "2", Long.toString(token), aeron.toString(), jobKey));
            cmd.addAll(eps);
            Process child = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            ExecutorService pool = Executors.newFixedThreadPool(2);
            try {
                List<Future<Long>> members = new ArrayList<>();
                for (int r = 0; r < 2; r++) {
                    int rank = r;
                    members.add(pool.submit(() -> {
                        try (Member m = new Member(cfg, driver, rank, eps)) {
                            m.connect();
                            Collectives c = new Collectives(m);
                            workLoop(c, 0, 5); // the peer is alive: these rounds succeed
                            synchronized (child) {
                                child.notifyAll();
                            }
                            try {
                                workLoop(c, 5, Integer.MAX_VALUE);
                                return -1L;
                            } catch (PeerException e) {
                                // In the all-to-all everyone waits on rank 2 itself; in the ring all-reduce
                                // rank 1 waits on its left neighbour, rank 0, which waits on rank 2.
                                assertTrue(e.ranks().contains(2) || (rank == 1 && e.ranks().contains(0)), e.getMessage());
                                System.out.println("rank " + rank + ": " + e.getMessage());
                                return System.nanoTime();
                            }
                        }
                    }));
                }
                BufferedReader out = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8));
                String line;
                do {
                    line = out.readLine();
                } while (line != null && !line.equals("joined 2"));
                assertEquals("joined 2", line, "the child joined");
                synchronized (child) {
                    child.wait(30_000);
                }
                Thread.sleep(200); // mid-operation
                long killedAt = System.nanoTime();
                child.destroyForcibly();
                for (Future<Long> f : members) {
                    long failedAt = f.get(30, TimeUnit.SECONDS);
                    double seconds = (failedAt - killedAt) / 1e9;
                    System.out.printf("%s: named error %.2f s after the kill%n", t, seconds);
                    assertTrue(failedAt > 0 && seconds < 2.0 + 3.0, "error within the timeout (+slack): " + seconds + " s");
                }
            } finally {
                child.destroyForcibly();
                pool.shutdownNow();
            }
        }
    }

    @Test
    void aPeerThatNeverStartsIsNamedAtConnect() throws Exception {
        CommsConfig cfg = GroupHarness.config(Transport.UDP, aeron).withTimeouts(1_500, 1_500);
        List<String> eps = GroupHarness.endpoints(Transport.UDP, 3);
        try (EmbeddedMediaDriver driver = EmbeddedMediaDriver.acquire(cfg, GroupHarness.jobKey("absent"), 2, 3, 0);
             Member m = new Member(cfg, driver, 0, eps)) {
            long t0 = System.nanoTime();
            PeerException e = assertThrows(PeerException.class, m::connect);
            double s = (System.nanoTime() - t0) / 1e9;
            assertEquals(List.of(1, 2), e.ranks());
            assertTrue(e.getMessage().contains("rank 2 (udp " + eps.get(2) + ")"), e.getMessage());
            assertTrue(e.getMessage().contains("within 1500 ms"), e.getMessage());
            assertTrue(s < 5, "took " + s + " s");
        }
    }

    @Test
    void aPeerThatStallsIsNamed() throws Exception {
        CommsConfig cfg = GroupHarness.config(Transport.IPC, aeron).withTimeouts(10_000, 1_500);
        List<String> messages = GroupHarness.run(cfg, 3, 0, c -> {
            if (c.member().rank() == 2) {
                Thread.sleep(4_000); // connected, then silent: never enters the all-to-all
                return "";
            }
            int[] counts = {10, 10, 10};
            PeerException e = assertThrows(PeerException.class,
                    () -> c.allToAll(new float[30], 0, counts, new float[30], 0, new int[3]));
            assertEquals(List.of(2), e.ranks());
            return e.getMessage();
        });
        assertEquals("comms allToAll counts #1 round 0 on rank 0 (ipc stream 1000) timed out after 1500 ms: "
                + "rank 2 (ipc stream 1002) is late, received 0 of 4 bytes", messages.get(0));
    }

    @Test
    void theStartBarrierWaitsOutSlowSetUpThenTheOpTimeoutApplies() throws Exception {
        CommsConfig cfg = GroupHarness.config(Transport.IPC, aeron).withTimeouts(6_000, 1_000);
        List<String> messages = GroupHarness.run(cfg, 3, 0, c -> {
            int rank = c.member().rank();
            Thread.sleep(rank * 1_500L); // set-up after connect, rank 2's 3 s past the op timeout
            c.startBarrier();
            float[] x = {rank + 1};
            c.allReduceSum(x, 0, 1);
            assertEquals(6f, x[0]);
            if (rank == 2) {
                Thread.sleep(3_000); // a stall once running is an error
                return "";
            }
            PeerException e = assertThrows(PeerException.class, c::barrier);
            assertEquals(List.of(2), e.ranks());
            return e.getMessage();
        });
        assertTrue(messages.get(0).contains("barrier #3 round 0 on rank 0 (ipc stream 1000) timed out after 1000 ms: "
                + "rank 2 (ipc stream 1002) is late"), messages.get(0));
    }

    @Test
    void aPeerThatNeverSendsIsNamedWhileItsRowsAreAwaited() throws Exception {
        CommsConfig cfg = GroupHarness.config(Transport.IPC, aeron).withTimeouts(5_000, 1_000);
        List<String> messages = GroupHarness.run(cfg, 2, 0, c -> {
            c.startBarrier();
            if (c.member().rank() == 1) {
                Thread.sleep(2_500); // stalls instead of its half of the all-to-all
                return "";
            }
            ByteBuffer send = ByteBuffer.allocateDirect(64).order(ByteOrder.nativeOrder());
            ByteBuffer recv = ByteBuffer.allocateDirect(64).order(ByteOrder.nativeOrder());
            c.startAllToAllV(send, 0, new int[] {4, 4}, recv, 0, new int[] {4, 4});
            PeerException e = assertThrows(PeerException.class, () -> c.awaitReceived(1, 2));
            assertEquals(List.of(1), e.ranks());
            return e.getMessage();
        });
        assertEquals("comms allToAll #2 round 0 on rank 0 (ipc stream 1000) timed out after 1000 ms: "
                + "rank 1 (ipc stream 1001) is late, received 0 of 16 bytes", messages.get(0));
    }

    @Test
    void aPeerLateAtTheStartBarrierIsNamedAfterTheConnectTimeout() throws Exception {
        CommsConfig cfg = GroupHarness.config(Transport.IPC, aeron).withTimeouts(1_500, 500);
        List<String> messages = GroupHarness.run(cfg, 2, 0, c -> {
            if (c.member().rank() == 1) {
                Thread.sleep(3_500); // never reaches the start barrier in time
                return "";
            }
            PeerException e = assertThrows(PeerException.class, c::startBarrier);
            assertEquals(List.of(1), e.ranks());
            return e.getMessage();
        });
        assertEquals("comms start #1 round 0 on rank 0 (ipc stream 1000) timed out after 1500 ms: "
                + "rank 1 (ipc stream 1001) is late, its (empty) message has not arrived", messages.get(0));
    }

    @Test
    void framesWithoutTheTokenAreDroppedAndCountedAndGarbageIsAnError() throws Exception {
        CommsConfig cfg = GroupHarness.config(Transport.IPC, aeron);
        List<String> eps = List.of("ipc", "ipc");
        try (EmbeddedMediaDriver driver = EmbeddedMediaDriver.acquire(cfg, GroupHarness.jobKey("rogue"), 3, 2, 0)) {
            ExclusivePublication rogue = driver.aeron().addExclusivePublication("aeron:ipc", cfg.streamIdBase());
            List<Long> dropped = GroupHarness.runOn(cfg, driver, eps, 2, c -> {
                if (c.member().rank() == 0) {
                    UnsafeBuffer frame = new UnsafeBuffer(new byte[40]);
                    frame.putLong(0, 0xBAD, java.nio.ByteOrder.LITTLE_ENDIAN); // wrong token
                    long deadline = System.nanoTime() + 5_000_000_000L;
                    while (rogue.offer(frame) < 0 && System.nanoTime() < deadline) {
                        Thread.onSpinWait();
                    }
                }
                c.barrier();
                c.barrier();
                return c.member().counters().droppedFrames;
            });
            assertTrue(dropped.get(0) >= 1, "rank 0 dropped the rogue frame: " + dropped);

            List<String> errors = GroupHarness.runOn(cfg, driver, eps, 2, c -> {
                if (c.member().rank() == 0) {
                    UnsafeBuffer frame = new UnsafeBuffer(new byte[8]); // shorter than a header
                    long deadline = System.nanoTime() + 5_000_000_000L;
                    while (rogue.offer(frame) < 0 && System.nanoTime() < deadline) {
                        Thread.onSpinWait();
                    }
                    PeerException e = assertThrows(PeerException.class, () -> {
                        for (int i = 0; i < 100; i++) {
                            c.barrier();
                        }
                    });
                    return e.getMessage();
                }
                try {
                    c.barrier();
                } catch (PeerException expected) {
                    // rank 0 stops; rank 1 may time out waiting for it
                }
                return "";
            });
            assertTrue(errors.get(0).contains("malformed input: a frame of 8 bytes"), errors.get(0));
            rogue.close();
        }
    }

    @Test
    void udpLossIsRepaired() throws Exception {
        CommsConfig cfg = GroupHarness.config(Transport.UDP, aeron);
        List<Integer> rounds = GroupHarness.run(cfg, 3, 0.05, c -> workLoop(c, 0, 4));
        assertEquals(List.of(4, 4, 4), rounds);
    }

    @Test
    void aSecondUserWithOtherDriverSettingsIsRefused() {
        CommsConfig cfg = GroupHarness.config(Transport.IPC, aeron);
        String job = GroupHarness.jobKey("mismatch");
        try (EmbeddedMediaDriver d = EmbeddedMediaDriver.acquire(cfg, job, 1, 2, 0)) {
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> EmbeddedMediaDriver.acquire(cfg.withTerm(1 << 20, 65504), job, 1, 2, 0));
            assertTrue(e.getMessage().contains("every member of a job must use the same settings"), e.getMessage());
            EmbeddedMediaDriver again = EmbeddedMediaDriver.acquire(cfg, job, 1, 2, 0);
            assertEquals(d.directory(), again.directory(), "the same settings share the driver");
            again.close();
        }
    }

    /**
     * Another JVM's driver that is paused (stopped for 2.5 s here; on a loaded machine a stall of
     * over 1 s was enough) is still that JVM's driver: a member attaching to it, or acquiring the
     * job's driver, uses it once it answers. Both once took it for a dead one and started their own
     * over its directory, deleting it.
     */
    @Test
    void aPausedDriverOfAnotherJvmIsUsedNeverReplaced() throws Exception {
        String jobKey = GroupHarness.jobKey("host");
        Process host = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-exports", "java.base/jdk.internal.misc=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                DriverHostMain.class.getName(), aeron.toString(), jobKey).redirectErrorStream(true).start();
        try {
            BufferedReader out = new BufferedReader(new InputStreamReader(host.getInputStream(), StandardCharsets.UTF_8));
            String line;
            do {
                line = out.readLine();
            } while (line != null && !line.startsWith("driver up in "));
            assertTrue(line != null, "the host JVM started its driver");
            Path dir = Path.of(line.substring("driver up in ".length()));
            CommsConfig cfg = GroupHarness.config(Transport.IPC, aeron).withTimeouts(20_000, 10_000);
            signal(host, "STOP");
            Thread.sleep(2_500);
            java.util.concurrent.CompletableFuture<EmbeddedMediaDriver> acquired = java.util.concurrent.CompletableFuture
                    .supplyAsync(() -> EmbeddedMediaDriver.acquire(cfg, jobKey, 2, 2, 0));
            Thread.sleep(1_000);
            signal(host, "CONT");
            try (EmbeddedMediaDriver d = acquired.get(30, TimeUnit.SECONDS);
                 EmbeddedMediaDriver again = EmbeddedMediaDriver.attach(cfg, jobKey)) {
                assertEquals(dir, d.directory());
                assertTrue(!d.hostsDriver(), "a client of the host's driver, not a driver of its own");
                assertTrue(again == d, "attach shares this JVM's hold");
                List<Integer> rounds = GroupHarness.runOn(cfg, d, List.of("ipc", "ipc"), 2, c -> workLoop(c, 0, 2));
                assertEquals(List.of(2, 2), rounds, "two members talk through the host's driver");
            }
            assertTrue(host.isAlive() && java.nio.file.Files.exists(dir.resolve("cnc.dat")), "the host's driver is intact");
        } finally {
            signal(host, "CONT");
            host.getOutputStream().close();
            if (!host.waitFor(10, TimeUnit.SECONDS)) {
                host.destroyForcibly();
            }
        }
    }

    @Test
    void attachingWhereNoDriverRunsFailsNamingTheDirectory() {
        CommsConfig cfg = GroupHarness.config(Transport.IPC, aeron).withTimeouts(300, 300);
        CommsException e = assertThrows(CommsException.class, () -> EmbeddedMediaDriver.attach(cfg, "nobody-here"));
        assertTrue(e.getMessage().contains("no media driver is active in " + aeron.resolve("roundhouse-nobody-here")
                .toAbsolutePath() + " after 300 ms"), e.getMessage());
        assertTrue(!java.nio.file.Files.exists(aeron.resolve("roundhouse-nobody-here")), "nothing created");
    }

    @Test
    void aTakenPortIsNamedNotThrownFromAeron() throws Exception {
        CommsConfig cfg = GroupHarness.config(Transport.UDP, aeron).withTimeouts(1_500, 1_500);
        try (java.net.DatagramSocket taken = new java.net.DatagramSocket(0, java.net.InetAddress.getLoopbackAddress());
             EmbeddedMediaDriver driver = EmbeddedMediaDriver.acquire(cfg, GroupHarness.jobKey("taken"), 1, 2, 0)) {
            List<String> eps = List.of("127.0.0.1:" + taken.getLocalPort(), GroupHarness.endpoints(Transport.UDP, 1).get(0));
            CommsException e = assertThrows(CommsException.class, () -> new Member(cfg, driver, 0, eps).close());
            assertTrue(e.getMessage().contains("rank 0 (udp " + eps.get(0) + ") cannot listen there")
                    && e.getMessage().contains("another process holds that port"), e.getMessage());
        }
    }

    @Test
    void anAeronDirectoryThatCannotBeMadeIsNamed() throws Exception {
        java.nio.file.Path file = java.nio.file.Files.writeString(aeron.resolve("a-file"), "x");
        CommsConfig cfg = GroupHarness.config(Transport.IPC, aeron).withAeronDirBase(file.resolve("below"));
        CommsException e = assertThrows(CommsException.class,
                () -> EmbeddedMediaDriver.acquire(cfg, GroupHarness.jobKey("unwritable"), 2, 2, 0));
        assertTrue(e.getMessage().contains("cannot use " + file.resolve("below") + " for the Aeron directory")
                && e.getMessage().contains("comms.aeronDir"), e.getMessage());
    }

    private static void signal(Process p, String sig) throws Exception {
        new ProcessBuilder("kill", "-" + sig, Long.toString(p.pid())).inheritIO().start().waitFor();
    }

    /**
     * A file system that fills up between the driver's start and a member's streams (another
     * process took the room) is named with its fixes, not left as Aeron's registration error.
     */
    @Test
    void aFileSystemThatFillsBeforeTheStreamsOpenIsNamed() throws Exception {
        Path small = aeron.resolve("small");
        java.nio.file.Files.createDirectories(small);
        Process mount = new ProcessBuilder("mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", small.toString())
                .redirectErrorStream(true).start();
        String why = new String(mount.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8).strip();
        org.junit.jupiter.api.Assumptions.assumeTrue(mount.waitFor() == 0, "skipped: cannot mount a tmpfs here (" + why
                + ")");
        try {
            CommsConfig cfg = GroupHarness.config(Transport.IPC, small).withTerm(1 << 20, 8192)
                    .withOverlap(CommsConfig.Overlap.OFF);
            EmbeddedMediaDriver driver = EmbeddedMediaDriver.acquire(cfg, "filled", 2, 2, 0);
            long room = java.nio.file.Files.getFileStore(small).getUsableSpace();
            try (java.io.RandomAccessFile filler = new java.io.RandomAccessFile(small.resolve("filler").toFile(), "rw")) {
                filler.write(new byte[(int) room - (1 << 20)]);  // 1 MiB left: less than a log of three 1 MiB terms
            }
            CommsException e = assertThrows(CommsException.class,
                    () -> Member.join(cfg, driver, 0, List.of("ipc", "ipc")));
            assertTrue(e.getMessage().contains("rank 0") && e.getMessage().contains("cannot open its streams")
                    && e.getMessage().contains("file system is full") && e.getMessage().contains("comms.aeronDir"),
                    e.getMessage());
        } finally {
            new ProcessBuilder("umount", small.toString()).inheritIO().start().waitFor();
        }
    }

    /**
     * The space check counts each member's siblings: one for the streamed combines with overlap
     * (flat all-to-all only), one more for the gradient buckets with {@code all}.
     */
    @Test
    void theSpaceCheckCountsTheSiblingsEachScheduleOpens() {
        CommsConfig cfg = GroupHarness.config(Transport.IPC, aeron).withTerm(1 << 30, 8192);
        java.util.function.Function<CommsConfig, Long> logs = c -> {
            CommsException e = assertThrows(CommsException.class,
                    () -> EmbeddedMediaDriver.checkSpace(c, aeron, 1, 64, 512));
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("(\\d+) logs of 3 terms").matcher(e.getMessage());
            assertTrue(m.find(), e.getMessage());
            return Long.parseLong(m.group(1));
        };
        long alone = 64L * 511;
        assertEquals(alone, logs.apply(cfg.withOverlap(CommsConfig.Overlap.OFF)));
        assertEquals(2 * alone, logs.apply(cfg.withOverlap(CommsConfig.Overlap.ON)));
        assertEquals(3 * alone, logs.apply(cfg.withOverlap(CommsConfig.Overlap.ALL)));
        assertEquals(alone, logs.apply(cfg.withOverlap(CommsConfig.Overlap.ON).withTwoLevelAllToAll(true)));
        assertEquals(2 * alone, logs.apply(cfg.withOverlap(CommsConfig.Overlap.ALL).withTwoLevelAllToAll(true)));
        // The driver's counters grow with its streams, from Aeron's 1 MiB up.
        assertEquals(1 << 20, EmbeddedMediaDriver.counterValuesBytes(cfg, 2, 2));
        assertTrue(EmbeddedMediaDriver.counterValuesBytes(cfg.withOverlap(CommsConfig.Overlap.ALL), 8, 256)
                >= 2L * 8 * 3 * 255 * 8 * 128);
    }

    @Test
    void notEnoughSharedMemoryIsExplained() {
        CommsConfig cfg = GroupHarness.config(Transport.UDP, aeron).withTerm(1 << 30, 8192);
        CommsException e = assertThrows(CommsException.class,
                () -> EmbeddedMediaDriver.checkSpace(cfg, aeron, 1, 64, 512));
        assertTrue(e.getMessage().contains("need about") && e.getMessage().contains("--shm-size"), e.getMessage());
    }
}
