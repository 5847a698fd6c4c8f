package io.roundhouse.worker;

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
import io.roundhouse.kernels.Precision;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.worker.model.Batch;
import io.roundhouse.worker.model.ExpertExchange;
import io.roundhouse.worker.model.LocalExchange;
import io.roundhouse.worker.model.Model;
import io.roundhouse.worker.model.ModelSpec;
import io.roundhouse.worker.model.MoeClassifier;
import io.roundhouse.worker.model.Ninformer;
import io.roundhouse.worker.model.NinformerSpec;
import io.roundhouse.worker.model.NormKind;
import io.roundhouse.worker.model.Param;
import io.roundhouse.worker.model.StepStats;
import io.roundhouse.worker.model.StnSpec;
import io.roundhouse.worker.parallel.AllToAllExchange;
import io.roundhouse.worker.parallel.DenseGradientSync;
import io.roundhouse.worker.parallel.ExpertPlacement;
import io.roundhouse.worker.train.AdamW;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.IntFunction;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * DESIGN invariant: W workers with global batch B (each a shard of B/W examples, experts spread
 * over them or, with more workers than experts, replicated with the replicas' gradients summed,
 * dense gradients all-reduced, router-loss statistics summed, dropout keyed by global
 * example) end with the parameters one worker gets with batch B, after 20 AdamW steps with
 * clipping, dropout and both router losses on (dropless: the capacity rule is per worker).
 */
@Timeout(120)
class ExpertParallelTrainingTest {
    private static final int B = 12;
    private static final int STEPS = 20;

    @TempDir
    Path aeron;

    static ModelSpec spec() {
        return new ModelSpec(12, 4, 8, 2, 4, 2, 6, Activation.GELU, NormKind.LAYERNORM, GateMode.TOPK_SOFTMAX, 0, 0.2,
                0.2, 0.01, 0.001);
    }

    static ModelSpec spec(Precision p) {
        return spec().withPrecision(p);
    }

    static float[] batchX(int step) {
        return batchX(step, 12);
    }

    static float[] batchX(int step, int inputs) {
        Random r = new Random(1000 + step);
        float[] x = new float[B * inputs];
        for (int j = 0; j < x.length; j++) {
            x[j] = (float) r.nextGaussian();
        }
        return x;
    }

    static int[] batchY(int step) {
        Random r = new Random(2000 + step);
        int[] y = new int[B];
        for (int j = 0; j < B; j++) {
            y[j] = r.nextInt(4);
        }
        return y;
    }

    static AdamW optimizer(Backend be, Model m) {
        return new AdamW(be, m.params(), 0.9, 0.999, 1e-8, 0.01, 1.0);
    }

    /** A model of at most {@code maxN} examples with the given expert exchanges. */
    interface ModelMaker {
        Model make(Backend be, int maxN, IntFunction<ExpertExchange> exchanges);
    }

    record TensorBatch(Tensor inputs, Tensor targets, int[] hostTargets) implements Batch {
    }

    /**
     * In bf16 too: the workers round the same values, so only a summation-order difference that
     * lands on a rounding boundary can tell them apart; the tolerance allows for a few such flips.
     */
    @ParameterizedTest(name = "W={0} {1}")
    // 6 workers, 4 experts: experts 0 and 1 have two replicas
    @CsvSource({"2, FP32", "3, FP32", "4, FP32", "6, FP32", "2, BF16", "6, BF16"})
    void wWorkersEqualOneWorker(int w, Precision precision) throws Exception {
        trainAndCompare(w, precision == Precision.BF16 ? 1e-4 : 1e-5, 12, 1,
                (be, n, ex) -> new MoeClassifier(be, spec(precision), 5, n, ex), "classifier " + precision);
    }

    /**
     * The NiNformer's patches are the MoE layers' tokens: a worker routes rows [f·P, (f+n)·P) of
     * the global batch, and its masks and router noise are keyed by them (6×6 images in 9 patches,
     * every other block's FFN MoE).
     */
    @ParameterizedTest(name = "NiNformer W={0}")
    @CsvSource({"2", "3"})
    void wWorkersEqualOneWorkerForTheNinformer(int w) throws Exception {
        NinformerSpec spec = new NinformerSpec(new ModelSpec(36, 4, 8, 2, 4, 2, 6, Activation.GELU,
                NormKind.LAYERNORM, GateMode.TOPK_SOFTMAX, 0, 0.2, 0.2, 0.01, 0.001, 0.1, StnSpec.NONE,
                Precision.FP32), 1, 6, 2, 5, 10, 1, 12);
        trainAndCompare(w, 1e-5, 36, spec.patches(), (be, n, ex) -> new Ninformer(be, spec, 5, n, ex), "NiNformer");
    }

    /**
     * One worker with batch B, then W workers each with B/W examples and its share of the experts,
     * 20 AdamW steps each; every worker's parameters must equal the one worker's (its slice of the
     * experts) within {@code tol}.
     */
    private void trainAndCompare(int w, double tol, int inputs, int rowsPerExample, ModelMaker maker, String label)
            throws Exception {
        // One worker, batch B.
        Backend refBe = new CpuBackend();
        Model ref = maker.make(refBe, B, b -> new LocalExchange(4));
        List<float[]> initial = new ArrayList<>();
        for (Param p : ref.params().all()) {
            initial.add(ref.params().read(p));
        }
        AdamW refOpt = optimizer(refBe, ref);
        Tensor rx = refBe.allocate("x", DType.FLOAT32, B, inputs);
        Tensor ry = refBe.allocate("y", DType.INT32, B);
        StepStats rs = new StepStats(ref.moeLayers(), 4);
        for (int step = 0; step < STEPS; step++) {
            refBe.write(rx, batchX(step, inputs));
            refBe.write(ry, batchY(step));
            ref.params().zeroGrads();
            ref.forward(new TensorBatch(rx, ry, batchY(step)), B, true, 7, step, 0, rs);
            ref.backward(B);
            refOpt.step(1e-2);
        }

        // W workers, each B/W examples and its share of the experts.
        ExpertPlacement placement = new ExpertPlacement(4, w);
        CommsConfig cfg = CommsConfig.defaults(Transport.IPC, 99).withTimeouts(10_000, 10_000).withAeronDirBase(aeron);
        List<String> eps = new ArrayList<>();
        for (int r = 0; r < w; r++) {
            eps.add("ipc");
        }
        int shard = B / w;
        ExecutorService pool = Executors.newFixedThreadPool(w);
        try (EmbeddedMediaDriver driver = EmbeddedMediaDriver.acquire(cfg, "ept-" + ProcessHandle.current().pid() + "-" + w,
                w, w, 0)) {
            List<Future<List<float[]>>> futures = new ArrayList<>();
            for (int r = 0; r < w; r++) {
                int rank = r;
                futures.add(pool.submit(() -> {
                    try (Member m = new Member(cfg, driver, rank, eps)) {
                        m.connect();
                        Collectives c = new Collectives(m);
                        Backend be = new CpuBackend();
                        Model model = maker.make(be, shard,
                                b -> new AllToAllExchange(be, c, placement, 8, shard * rowsPerExample * 2));
                        int f = placement.firstExpert(rank);
                        int n = placement.expertCount(rank);
                        // Built from the same seed, each worker starts with exactly its slice of the
                        // one-worker model (the initialiser draws every expert, keeps the hosted ones).
                        for (int i = 0; i < initial.size(); i++) {
                            Param p = model.params().all().get(i);
                            float[] v = initial.get(i);
                            if (p.name().contains(".experts.")) {
                                int per = v.length / 4;
                                v = Arrays.copyOfRange(v, f * per, (f + n) * per);
                            }
                            if (!Arrays.equals(v, model.params().read(p))) {
                                throw new AssertionError("worker " + rank + " starts with another " + p.name()
                                        + " than the one-worker model");
                            }
                        }
                        AdamW opt = optimizer(be, model);
                        DenseGradientSync sync = new DenseGradientSync(be, model.params(), c, placement, 0, false);
                        Tensor x = be.allocate("x", DType.FLOAT32, shard, inputs);
                        Tensor y = be.allocate("y", DType.INT32, shard);
                        StepStats st = new StepStats(model.moeLayers(), 4);
                        for (int step = 0; step < STEPS; step++) {
                            be.write(x, Arrays.copyOfRange(batchX(step, inputs), rank * shard * inputs,
                                    (rank + 1) * shard * inputs));
                            int[] labels = Arrays.copyOfRange(batchY(step), rank * shard, (rank + 1) * shard);
                            be.write(y, labels);
                            model.params().zeroGrads();
                            model.forward(new TensorBatch(x, y, labels), shard, true, 7, step, (long) rank * shard, st);
                            model.backward(B);
                            opt.step(1e-2, sync.allReduce(new float[0]));
                        }
                        List<float[]> out = new ArrayList<>();
                        for (Param p : model.params().all()) {
                            out.add(model.params().read(p));
                        }
                        return out;
                    }
                }));
            }
            double worst = 0;
            for (int r = 0; r < w; r++) {
                List<float[]> got = futures.get(r).get(60, TimeUnit.SECONDS);
                int f = placement.firstExpert(r);
                int n = placement.expertCount(r);
                for (int i = 0; i < got.size(); i++) {
                    Param p = ref.params().all().get(i);
                    float[] want = ref.params().read(p);
                    if (p.name().contains(".experts.")) {
                        int per = want.length / 4;
                        want = Arrays.copyOfRange(want, f * per, (f + n) * per);
                    }
                    for (int j = 0; j < want.length; j++) {
                        double diff = Math.abs(want[j] - got.get(i)[j]);
                        worst = Math.max(worst, diff);
                        assertTrue(diff <= tol, "worker " + r + " " + p.name() + "[" + j + "]: " + got.get(i)[j]
                                + " vs one worker's " + want[j]);
                    }
                }
            }
            System.out.printf("W=%d %s: worst parameter difference after %d steps %.2e%n", w, label, STEPS, worst);
        } finally {
            pool.shutdownNow();
        }
    }
}
