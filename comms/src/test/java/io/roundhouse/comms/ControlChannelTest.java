package io.roundhouse.comms;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

@Timeout(60)
class ControlChannelTest {
    @TempDir
    Path aeron;

    record StepReport(int rank, long step, float loss, float[] expertLoad, String note) {
    }

    record Command(String kind, long atStep) {
    }

    static final List<Class<?>> TYPES = List.of(StepReport.class, Command.class);

    @ParameterizedTest
    @EnumSource(Transport.class)
    void coordinatorAndMembersExchangeTypedMessages(Transport t) throws Exception {
        int w = 3;
        CommsConfig cfg = GroupHarness.config(t, aeron);
        List<String> eps = GroupHarness.endpoints(t, w + 1);
        try (EmbeddedMediaDriver driver = EmbeddedMediaDriver.acquire(cfg, GroupHarness.jobKey("ctl"), w + 1, w + 1, 0)) {
            ExecutorService pool = Executors.newFixedThreadPool(w);
            try (ControlChannel coord = new ControlChannel(cfg, driver, 0, eps, new ControlCodec(1 << 16, TYPES), 1 << 16)) {
                List<Future<Command>> members = new ArrayList<>();
                for (int r = 0; r < w; r++) {
                    int rank = r;
                    members.add(pool.submit(() -> {
                        try (ControlChannel ch = new ControlChannel(cfg, driver, rank + 1, eps,
                                new ControlCodec(1 << 16, TYPES), 1 << 16)) {
                            ch.connect();
                            for (int s = 0; s < 100; s++) {
                                ch.send(0, new StepReport(rank, s, 1f / (s + 1), new float[] {rank, s}, "ok"));
                            }
                            Command[] got = new Command[1];
                            long deadline = System.nanoTime() + 20_000_000_000L;
                            while (got[0] == null && System.nanoTime() < deadline) {
                                ch.poll((from, msg) -> {
                                    assertEquals(0, from);
                                    got[0] = (Command) msg;
                                }, 10);
                                Thread.onSpinWait();
                            }
                            return got[0];
                        }
                    }));
                }
                coord.connect();
                int[] perRank = new int[w];
                long deadline = System.nanoTime() + 20_000_000_000L;
                while (sum(perRank) < 100 * w && System.nanoTime() < deadline) {
                    coord.poll((from, msg) -> {
                        StepReport rep = (StepReport) msg;
                        assertEquals(from - 1, rep.rank());
                        assertEquals(perRank[rep.rank()], rep.step(), "in order per member");
                        assertEquals(rep.step(), (long) rep.expertLoad()[1]);
                        perRank[rep.rank()]++;
                    }, 64);
                }
                assertEquals(300, sum(perRank));
                for (int r = 0; r < w; r++) {
                    coord.send(r + 1, new Command("checkpoint", 7));
                }
                for (Future<Command> f : members) {
                    assertEquals(new Command("checkpoint", 7), f.get(30, TimeUnit.SECONDS));
                }
                IllegalArgumentException star = assertThrows(IllegalArgumentException.class, () -> coord.send(0, "x"));
                assertTrue(star.getMessage().contains("no control route"), star.getMessage());
            } finally {
                pool.shutdownNow();
            }
        }
    }

    /**
     * A party of another job (another session token) on this job's control endpoints: its frames
     * are dropped and counted, never decoded or delivered; the job's own party gets through.
     */
    @ParameterizedTest
    @EnumSource(Transport.class)
    void framesWithoutTheJobsTokenAreDroppedAndCounted(Transport t) throws Exception {
        CommsConfig cfg = GroupHarness.config(t, aeron);
        List<String> eps = GroupHarness.endpoints(t, 3);
        try (EmbeddedMediaDriver driver = EmbeddedMediaDriver.acquire(cfg, GroupHarness.jobKey("tok"), 3, 3, 0);
             ControlChannel coord = new ControlChannel(cfg, driver, 0, eps, new ControlCodec(1 << 16, TYPES), 1 << 16);
             ControlChannel stranger = new ControlChannel(cfg.withSessionToken(0xBADL), driver, 1, eps,
                     new ControlCodec(1 << 16, TYPES), 1 << 16);
             ControlChannel member = new ControlChannel(cfg, driver, 2, eps, new ControlCodec(1 << 16, TYPES), 1 << 16)) {
            ExecutorService pool = Executors.newFixedThreadPool(2);
            try {
                Future<?> a = pool.submit(() -> {
                    stranger.connect();
                    for (int i = 0; i < 5; i++) {
                        stranger.send(0, new Command("stop", i));
                    }
                    return null;
                });
                Future<?> b = pool.submit(() -> {
                    member.connect();
                    return null;
                });
                coord.connect();
                a.get(30, TimeUnit.SECONDS);
                b.get(30, TimeUnit.SECONDS);
                member.send(0, new Command("checkpoint", 9));
                List<Object> got = new ArrayList<>();
                long deadline = System.nanoTime() + 20_000_000_000L;
                while ((got.isEmpty() || coord.dropped() < 5) && System.nanoTime() < deadline) {
                    coord.poll((from, msg) -> got.add(from + ":" + msg), 16);
                    Thread.onSpinWait();
                }
                assertEquals(List.of("2:" + new Command("checkpoint", 9)), got, "only the job's own party gets through");
                assertEquals(5, coord.dropped(), "the stranger's frames are counted");
            } finally {
                pool.shutdownNow();
            }
        }
    }

    private static int sum(int[] a) {
        int s = 0;
        for (int v : a) {
            s += v;
        }
        return s;
    }

    @Test
    void codecRejectsUnregisteredTypesAndCorruptLengths() {
        ControlCodec codec = new ControlCodec(1024, TYPES);
        CommsException unregistered = assertThrows(CommsException.class, () -> codec.encode(new java.util.Date(), new int[1]));
        assertTrue(unregistered.getMessage().contains("is it registered"), unregistered.getMessage());

        int[] len = new int[1];
        byte[] bytes = codec.encode(new StepReport(1, 2, 3f, new float[] {1, 2, 3}, "hi"), len).clone();
        assertEquals(new StepReport(1, 2, 3f, new float[] {1, 2, 3}, "hi").note(),
                ((StepReport) codec.decode(bytes, 0, len[0])).note());
        // A float[] of 3 encodes as [class id][varint 3][12 bytes]; claim 2^27 elements instead.
        byte[] arr = codec.encode(new float[] {1, 2, 3}, len).clone();
        assertEquals(3, arr[1]);
        byte[] corrupt = new byte[len[0] + 3];
        corrupt[0] = arr[0];
        corrupt[1] = (byte) 0x80;
        corrupt[2] = (byte) 0x80;
        corrupt[3] = (byte) 0x80;
        corrupt[4] = (byte) 0x40;
        System.arraycopy(arr, 2, corrupt, 5, len[0] - 2);
        byte[] c = corrupt;
        CommsException e = assertThrows(CommsException.class, () -> codec.decode(c, 0, c.length));
        assertTrue(e.getMessage().startsWith("malformed control message"), e.getMessage());
        assertThrows(CommsException.class, () -> codec.decode(new byte[2000], 0, 2000), "over the size limit");
    }
}
