package io.roundhouse.worker.parallel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.roundhouse.comms.Collectives;
import io.roundhouse.comms.CommsConfig;
import io.roundhouse.comms.EmbeddedMediaDriver;
import io.roundhouse.comms.Member;
import io.roundhouse.comms.PeerException;
import io.roundhouse.comms.Transport;
import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.cpu.CpuBackend;
import io.roundhouse.worker.model.Param;
import io.roundhouse.worker.model.ParamStore;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The dense gradients' buckets: each holds one block's parameters (or those outside blocks), a
 * block's start when backward is done with it, and the sums are the serial schedule's bits (W = 2
 * sums directly, W = 3 through the ring for buckets over 4,096 floats); a peer that dies while the
 * comms thread sums a bucket is an error naming it on the compute thread, not a hang.
 */
@Timeout(120)
class GradientBucketsTest {
    @TempDir
    Path tmp;

    /** Parameters like a model's: an embedding, three blocks (block 1 over two buckets), a head. */
    private static ParamStore params(Backend be) {
        ParamStore ps = new ParamStore(be, 3);
        ps.normal("embed.w", 0.1, true, 40, 200);
        ps.normal("block0.attn.w", 0.1, true, 64, 64);
        ps.normal("block0.norm.g", 0.1, false, 64);
        ps.normal("block1.attn.w", 0.1, true, 300, 300);
        ps.normal("block1.attn.v", 0.1, true, 300, 250);
        ps.normal("block1.norm.g", 0.1, false, 300);
        ps.normal("block12.router.w", 0.1, true, 30, 8);
        ps.normal("head.w", 0.1, true, 64, 10);
        return ps;
    }

    /** Worker r's gradient of parameter i at step s: distinct per worker, step and element. */
    private static float grad(int r, int s, int i, int j) {
        return (float) Math.sin(0.37 * j + 1.3 * i + 2.1 * r + 0.7 * s) * (1 + 0.01f * j);
    }

    private static void fillGrads(Backend be, ParamStore ps, int r, int s) {
        int i = 0;
        for (Param p : ps.trainable()) {
            float[] g = new float[p.grad().size()];
            for (int j = 0; j < g.length; j++) {
                g[j] = grad(r, s, i, j);
            }
            be.write(p.grad(), g);
            i++;
        }
    }

    /** Runs {@code body(rank, member)} on W members of one group (IPC), returning each rank's result. */
    private <T> List<T> group(int w, long opTimeoutMs, String tag, Function<Member, T> body) throws Exception {
        CommsConfig cfg = CommsConfig.defaults(Transport.IPC, 97).withTimeouts(10_000, opTimeoutMs)
                .withAeronDirBase(tmp);
        List<String> eps = new ArrayList<>();
        for (int r = 0; r < w; r++) {
            eps.add("ipc");
        }
        ExecutorService pool = Executors.newFixedThreadPool(w);
        try (EmbeddedMediaDriver driver = EmbeddedMediaDriver.acquire(cfg, tag + ProcessHandle.current().pid(), w, w,
                0)) {
            List<Future<T>> futures = new ArrayList<>();
            for (int r = 0; r < w; r++) {
                int rank = r;
                futures.add(pool.submit((Callable<T>) () -> {
                    try (Member m = new Member(cfg, driver, rank, eps)) {
                        m.connect();
                        return body.apply(m);
                    }
                }));
            }
            List<T> all = new ArrayList<>();
            for (Future<T> f : futures) {
                all.add(f.get(60, TimeUnit.SECONDS));
            }
            return all;
        } finally {
            pool.shutdownNow();
        }
    }

    /** Every worker's summed gradients (in parameter order, then the extra value) after 2 steps. */
    private List<List<float[]>> run(int w, boolean overlap) throws Exception {
        return group(w, 10_000, (overlap ? "on" : "off") + w, m -> {
            int rank = m.rank();
            Backend be = new CpuBackend();
            ParamStore ps = params(be);
            List<float[]> out = new ArrayList<>();
            try (DenseGradientSync sync = new DenseGradientSync(be, ps, new Collectives(m), new ExpertPlacement(4, w),
                    1, overlap)) {
                assertEquals(6, sync.buckets(), "embed, block0, block1 twice, block12, head");
                for (int s = 0; s < 2; s++) {
                    fillGrads(be, ps, rank, s);
                    sync.backwardStarts();
                    sync.blockDone(12);
                    sync.blockDone(1);
                    sync.blockDone(0);
                    float[] extra = {rank + 0.25f * s};
                    sync.allReduce(extra);
                    out.clear();
                    for (Param p : ps.trainable()) {
                        out.add(ps.readGrad(p));
                    }
                    out.add(extra);
                }
                assertEquals(overlap ? 8 : 0, sync.startedInBackward(), "block buckets started in backward, 4 a step");
            }
            return out;
        });
    }

    @Test
    void overlappedBucketsGiveTheSerialBits() throws Exception {
        for (int w : new int[] {2, 3}) {
            List<List<float[]>> serial = run(w, false);
            List<List<float[]>> overlapped = run(w, true);
            for (int r = 0; r < w; r++) {
                for (int i = 0; i < serial.get(0).size(); i++) {
                    assertArrayEquals(serial.get(0).get(i), serial.get(r).get(i), "W=" + w + " worker " + r + " #" + i);
                    assertArrayEquals(serial.get(0).get(i), overlapped.get(r).get(i),
                            "W=" + w + " worker " + r + " #" + i + " overlapped");
                }
            }
            // The sums themselves: an element of block 1's larger bucket, and the extra value.
            float want = 0;
            for (int r = 0; r < w; r++) {
                want += grad(r, 1, 3, 5);
            }
            assertEquals(want, serial.get(0).get(3)[5], 1e-5f);
            assertEquals(w * (w - 1) / 2f + 0.25f * w, serial.get(0).get(8)[0], 1e-5f);
        }
    }

    @Test
    void aPeerThatDiesWhileTheCommsThreadSumsIsNamed() throws Exception {
        group(2, 1_500, "dies", m -> {
            Backend be = new CpuBackend();
            ParamStore ps = params(be);
            try (DenseGradientSync sync = new DenseGradientSync(be, ps, new Collectives(m), new ExpertPlacement(4, 2),
                    0, true)) {
                fillGrads(be, ps, m.rank(), 0);
                sync.backwardStarts();
                if (m.rank() == 1) {
                    return null;  // rank 1 leaves: its members close
                }
                sync.blockDone(1);
                PeerException e = assertThrows(PeerException.class, () -> sync.allReduce(new float[0]));
                assertTrue(e.getMessage().contains("rank 1") && e.ranks().contains(1), e.getMessage());
            }
            return null;
        });
    }
}
