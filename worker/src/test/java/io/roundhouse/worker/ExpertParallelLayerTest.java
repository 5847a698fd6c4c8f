package io.roundhouse.worker;

import static io.roundhouse.worker.TensorFixtures.read;
import static io.roundhouse.worker.TensorFixtures.tensor;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.roundhouse.comms.Collectives;
import io.roundhouse.comms.CommsConfig;
import io.roundhouse.comms.EmbeddedMediaDriver;
import io.roundhouse.comms.Member;
import io.roundhouse.comms.Transport;
import io.roundhouse.kernels.Activation;
import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.cpu.CpuBackend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.GateMode;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.worker.model.LocalExchange;
import io.roundhouse.worker.model.ModelSpec;
import io.roundhouse.worker.model.MoeLayer;
import io.roundhouse.worker.model.NormKind;
import io.roundhouse.worker.model.Param;
import io.roundhouse.worker.model.ParamStore;
import io.roundhouse.worker.parallel.AllToAllExchange;
import io.roundhouse.worker.parallel.ExpertPlacement;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * An MoE layer whose experts are spread over W workers (threads of this JVM, Aeron IPC) computes
 * what one layer holding every expert computes on all the workers' tokens together: the same
 * outputs and input gradients per token, the same gradients for each hosted expert, and router
 * gradients that sum to the single layer's. Dropless, without router losses (their statistics
 * are global: the trainer's part of issue 4).
 */
@Timeout(120)
class ExpertParallelLayerTest {
    private static final int D = 6;
    private static final int E = 6;

    @TempDir
    Path aeron;

    static ModelSpec spec() {
        return new ModelSpec(D, 2, D, 1, E, 2, 5, Activation.GELU, NormKind.LAYERNORM, GateMode.TOPK_SOFTMAX, 0, 0, 0, 0, 0);
    }

    @Test
    void placementSplitsUnevenlyAndReplicates() {
        ExpertPlacement p = new ExpertPlacement(6, 4);
        assertEquals(List.of(0, 2, 4, 5), List.of(p.firstExpert(0), p.firstExpert(1), p.firstExpert(2), p.firstExpert(3)));
        assertEquals(List.of(2, 2, 1, 1), List.of(p.expertCount(0), p.expertCount(1), p.expertCount(2), p.expertCount(3)));
        assertTrue(p.describe().contains("worker 1: experts 2-3"), p.describe());
        ExpertPlacement r = new ExpertPlacement(2, 5);
        assertTrue(r.replicated());
        assertEquals("[0, 2, 4]", Arrays.toString(r.hosts(0)));
        assertEquals("[1, 3]", Arrays.toString(r.hosts(1)));
        // Copies go to the local replica when there is one, else to replica (source mod R).
        assertEquals(List.of(0, 1, 2, 1, 4), List.of(r.destination(0, 0), r.destination(0, 1), r.destination(2, 0),
                r.destination(2, 1), r.destination(4, 0)));
        assertEquals(List.of(2, 3), List.of(r.destination(1, 0), r.destination(3, 1)));
        assertEquals(3, p.destination(0, 5), "without replicas: the host");
    }

    @ParameterizedTest(name = "W={0}")
    @ValueSource(ints = {2, 3, 4})
    void distributedLayerEqualsOneLayer(int w) throws Exception {
        int[] tokens = {5, 7, 1, 4}; // per worker; 1 token on worker 2
        int total = 0;
        for (int r = 0; r < w; r++) {
            total += tokens[r];
        }
        Random rnd = new Random(w);
        float[] x = gaussian(rnd, total * D);
        float[] dy = gaussian(rnd, total * D);

        // The reference: one layer, all experts, all tokens.
        Backend refBe = new CpuBackend();
        ParamStore refPs = new ParamStore(refBe, 9);
        MoeLayer ref = new MoeLayer(refBe, refPs, "moe", spec(), new LocalExchange(E), total);
        randomize(refBe, refPs, rnd);
        float[] refOut = read(refBe, ref.forward(tensor(refBe, x, total, D), 0));
        float[] refDx = read(refBe, ref.backward(tensor(refBe, dy, total, D)));

        ExpertPlacement placement = new ExpertPlacement(E, w);
        int[] from = new int[w + 1];
        for (int r = 0; r < w; r++) {
            from[r + 1] = from[r] + tokens[r];
        }
        List<float[][]> results = onWorkers(w, "ep", (rank, c) -> {
            int n = tokens[rank];
            Backend be = new CpuBackend();
            ParamStore ps = new ParamStore(be, 1);
            AllToAllExchange ex = new AllToAllExchange(be, c, placement, D, n * 2);
            MoeLayer layer = new MoeLayer(be, ps, "moe", spec(), ex, n);
            copyShard(refPs, refBe, ps, be, placement.firstExpert(rank), placement.expertCount(rank));
            float[] out = read(be, layer.forward(tensor(be, Arrays.copyOfRange(x, from[rank] * D, from[rank + 1] * D), n, D), 0));
            float[] dx = read(be, layer.backward(tensor(be, Arrays.copyOfRange(dy, from[rank] * D, from[rank + 1] * D), n, D)));
            return new float[][] {out, dx, ps.readGrad(layer.routerWeights()), ps.readGrad(layer.w1), ps.readGrad(layer.b1),
                ps.readGrad(layer.w2), ps.readGrad(layer.b2)};
        });
        float[] routerSum = new float[D * E];
        for (int r = 0; r < w; r++) {
            float[][] got = results.get(r);
            close("output of worker " + r, Arrays.copyOfRange(refOut, from[r] * D, from[r + 1] * D), got[0], 1e-5);
            close("dx of worker " + r, Arrays.copyOfRange(refDx, from[r] * D, from[r + 1] * D), got[1], 1e-5);
            for (int j = 0; j < routerSum.length; j++) {
                routerSum[j] += got[2][j];
            }
            int f = placement.firstExpert(r);
            int c = placement.expertCount(r);
            String[] names = {"w1", "b1", "w2", "b2"};
            for (int k = 0; k < 4; k++) {
                float[] all = refPs.readGrad(refPs.get("moe.experts." + names[k]));
                int per = all.length / E;
                close("d" + names[k] + " of worker " + r, Arrays.copyOfRange(all, f * per, (f + c) * per), got[3 + k], 1e-4);
            }
        }
        close("router gradient summed over workers", refPs.readGrad(ref.routerWeights()), routerSum, 1e-4);
    }

    /**
     * The capacity rule is per source worker and expert: with a capacity limit, each worker keeps
     * and drops exactly the copies a one-worker layer given only that worker's tokens (and the same
     * capacity) keeps and drops, and its outputs are that layer's.
     */
    @Test
    void dropsFollowThePerSourceWorkerRule() throws Exception {
        int w = 3;
        int n = 9;
        int capacity = 2;  // 9 tokens · 2 copies over 6 experts: 3 per expert on average, so some are dropped
        Random rnd = new Random(11);
        Backend refBe = new CpuBackend();
        ParamStore refPs = new ParamStore(refBe, 9);
        MoeLayer ref = new MoeLayer(refBe, refPs, "moe", spec(), new LocalExchange(E), n);
        randomize(refBe, refPs, rnd);
        float[][] x = new float[w][];
        for (int r = 0; r < w; r++) {
            x[r] = gaussian(rnd, n * D);
        }
        ExpertPlacement placement = new ExpertPlacement(E, w);
        List<Object[]> results = onWorkers(w, "drops", (rank, c) -> {
            Backend be = new CpuBackend();
            ParamStore ps = new ParamStore(be, 1);
            MoeLayer layer = new MoeLayer(be, ps, "moe", spec(), new AllToAllExchange(be, c, placement, D, n * 2), n);
            copyShard(refPs, refBe, ps, be, placement.firstExpert(rank), placement.expertCount(rank));
            float[] out = read(be, layer.forward(tensor(be, x[rank], n, D), capacity));
            int[] kept = new int[E];
            layer.keptPerExpert(kept);
            return new Object[] {out, kept, layer.dropped()};
        });
        int droppedTotal = 0;
        for (int r = 0; r < w; r++) {
            float[] want = read(refBe, ref.forward(tensor(refBe, x[r], n, D), capacity));
            int[] wantKept = new int[E];
            ref.keptPerExpert(wantKept);
            assertEquals(Arrays.toString(wantKept), Arrays.toString((int[]) results.get(r)[1]),
                    "copies worker " + r + " keeps per expert");
            assertEquals(ref.dropped(), (int) results.get(r)[2], "copies worker " + r + " drops");
            for (int e = 0; e < E; e++) {
                assertTrue(wantKept[e] <= capacity, "expert " + e + " keeps at most the capacity from worker " + r);
            }
            close("output of worker " + r + " under capacity " + capacity, want, (float[]) results.get(r)[0], 1e-5);
            droppedTotal += ref.dropped();
        }
        assertTrue(droppedTotal > 0, "the capacity drops copies in this test");
    }

    /** Runs {@code body} as each of W workers (threads of this JVM over Aeron IPC); their results in rank order. */
    private <T> List<T> onWorkers(int w, String tag, WorkerBody<T> body) throws Exception {
        CommsConfig cfg = CommsConfig.defaults(Transport.IPC, 77).withTimeouts(10_000, 10_000).withAeronDirBase(aeron);
        List<String> eps = new ArrayList<>();
        for (int r = 0; r < w; r++) {
            eps.add("ipc");
        }
        ExecutorService pool = Executors.newFixedThreadPool(w);
        try (EmbeddedMediaDriver driver = EmbeddedMediaDriver.acquire(cfg, tag + "-" + ProcessHandle.current().pid() + "-" + w,
                w, w, 0)) {
            List<Future<T>> futures = new ArrayList<>();
            for (int r = 0; r < w; r++) {
                int rank = r;
                futures.add(pool.submit(() -> {
                    try (Member m = new Member(cfg, driver, rank, eps)) {
                        m.connect();
                        return body.run(rank, new Collectives(m));
                    }
                }));
            }
            List<T> out = new ArrayList<>();
            for (Future<T> f : futures) {
                out.add(f.get(60, TimeUnit.SECONDS));
            }
            return out;
        } finally {
            pool.shutdownNow();
        }
    }

    interface WorkerBody<T> {
        T run(int rank, Collectives c) throws Exception;
    }

    private static void randomize(Backend be, ParamStore ps, Random rnd) {
        for (Param p : ps.all()) {
            be.write(p.value(), gaussian(rnd, p.value().size()));
        }
    }

    /** The router, and experts [first, first+count) of every expert tensor. */
    private static void copyShard(ParamStore from, Backend fromBe, ParamStore to, Backend toBe, int first, int count) {
        toBe.write(to.get("moe.router.w").value(), from.read(from.get("moe.router.w")));
        for (String name : new String[] {"w1", "b1", "w2", "b2"}) {
            float[] all = from.read(from.get("moe.experts." + name));
            int per = all.length / E;
            toBe.write(to.get("moe.experts." + name).value(), Arrays.copyOfRange(all, first * per, (first + count) * per));
        }
    }

    private static void close(String what, float[] want, float[] got, double tol) {
        assertEquals(want.length, got.length, what + ": length");
        double worst = 0;
        double scale = 1;
        for (int j = 0; j < want.length; j++) {
            worst = Math.max(worst, Math.abs(want[j] - got[j]));
            scale = Math.max(scale, Math.abs(want[j]));
        }
        System.out.printf("%-44s worst |diff| %.2e%n", what, worst);
        assertTrue(worst <= tol * scale, what + ": worst difference " + worst);
    }

    private static float[] gaussian(Random r, int n) {
        float[] v = new float[n];
        for (int j = 0; j < n; j++) {
            v[j] = (float) r.nextGaussian() * 0.5f;
        }
        return v;
    }
}
