package io.roundhouse.worker;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.roundhouse.comms.Collectives;
import io.roundhouse.comms.CommsConfig;
import io.roundhouse.comms.EmbeddedMediaDriver;
import io.roundhouse.comms.Member;
import io.roundhouse.comms.Transport;
import io.roundhouse.kernels.Activation;
import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.GateMode;
import io.roundhouse.kernels.Precision;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.kernels.cpu.CpuBackend;
import io.roundhouse.worker.data.ByteTokenizer;
import io.roundhouse.worker.data.DataException;
import io.roundhouse.worker.data.DataSplits;
import io.roundhouse.worker.data.SequenceBatcher;
import io.roundhouse.worker.data.TextCorpus;
import io.roundhouse.worker.data.TokenSequences;
import io.roundhouse.worker.model.Batch;
import io.roundhouse.worker.model.LmSpec;
import io.roundhouse.worker.model.ModelSpec;
import io.roundhouse.worker.model.MoeTransformer;
import io.roundhouse.worker.model.NormKind;
import io.roundhouse.worker.model.Param;
import io.roundhouse.worker.model.StepStats;
import io.roundhouse.worker.model.RouterSpec;
import io.roundhouse.worker.model.StnSpec;
import io.roundhouse.worker.parallel.AllToAllExchange;
import io.roundhouse.worker.parallel.DenseGradientSync;
import io.roundhouse.worker.parallel.ExpertPlacement;
import io.roundhouse.worker.train.AdamW;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
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
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The MoE transformer language model: W workers equal one worker, a tiny model memorises a tiny
 * text, and its data (the byte tokenizer, packing, the corpus's errors).
 */
@Timeout(180)
class LanguageModelTest {
    private static final int B = 4;
    private static final int T = 8;
    private static final int STEPS = 20;
    private static final int E = 4;

    @TempDir
    Path tmp;

    private static int[] tokens(int step, int rows) {
        Random r = new Random(3000 + step);
        int[] t = new int[rows];
        for (int j = 0; j < rows; j++) {
            t[j] = r.nextInt(32);
        }
        return t;
    }

    /** A batch of given token ids and targets. */
    private record FixedBatch(Tensor inputs, Tensor targets, int[] hostTargets) implements Batch {
        static FixedBatch of(Backend be, int[] in, int[] out) {
            Tensor i = be.allocate("in", DType.INT32, in.length);
            Tensor o = be.allocate("out", DType.INT32, out.length);
            be.write(i, in);
            be.write(o, out);
            return new FixedBatch(i, o, out);
        }
    }

    private static AdamW optimizer(Backend be, MoeTransformer m) {
        return new AdamW(be, m.params(), 0.9, 0.999, 1e-8, 0.01, 1.0);
    }

    /**
     * The sigmoid router's selection bias moves by the global load after every step (a large rate
     * here, so it changes choices within the test): every worker must hold the one worker's bias.
     */
    @ParameterizedTest(name = "W={0} tied embeddings={1} router={2} shared experts={3} pre-gating={4} hosts={5}")
    @CsvSource({"2, false, SOFTMAX, 0, false, 1", "3, true, SOFTMAX, 0, false, 1", "4, false, SOFTMAX, 1, false, 1",
            "2, false, SIGMOID, 0, false, 1", "3, true, SIGMOID, 2, false, 1", "2, false, NOISY, 0, false, 1",
            "3, false, NOISY, 1, true, 1", "2, false, DENSE_TO_SPARSE, 0, false, 1",
            "4, false, DENSE_TO_SPARSE, 0, true, 1", "2, false, EXPERT_CHOICE, 0, false, 1",
            "3, true, EXPERT_CHOICE, 0, false, 1", "4, false, EXPERT_CHOICE, 1, false, 1",
            "2, false, SOFTMAX, 0, true, 1", "3, true, SIGMOID, 0, true, 1", "4, false, SOFTMAX, 0, false, 2",
            "4, true, NOISY, 1, true, 2"})
    void wWorkersEqualOneWorker(int w, boolean tied, RouterSpec.Kind router, int shared, boolean preGating, int hosts)
            throws Exception {
        // B sequences split over W workers: shards of B/W (4 sequences: W = 3 gets 2, 1, 1).
        LmSpec spec = new LmSpec(new ModelSpec(32, 32, 16, 3, E, 2, 8, Activation.SWIGLU, NormKind.RMSNORM,
                GateMode.TOPK_SOFTMAX, 0, 0, 0.1, 0.01, 0.001, 0, StnSpec.NONE, Precision.FP32,
                RouterFixtures.spec(router, STEPS).withCausal(true).withPreGating(preGating), shared), T, 4, 2, 10000,
                1, 12,
                true, 0.1, tied);
        int rows = B * T;
        Backend refBe = new CpuBackend();
        MoeTransformer ref = MoeTransformer.local(refBe, spec, 5, B);
        AdamW refOpt = optimizer(refBe, ref);
        StepStats rs = new StepStats(ref.moeLayers(), E);
        double biasMoved = 0;  // Σ over steps of Σ|b|: the bias may come back to zero, not stay there
        for (int step = 0; step < STEPS; step++) {
            int[] all = tokens(step, rows + 1);
            FixedBatch batch = FixedBatch.of(refBe, Arrays.copyOfRange(all, 0, rows), Arrays.copyOfRange(all, 1, rows + 1));
            ref.params().zeroGrads();
            ref.forward(batch, B, true, 7, step, 0, rs);
            ref.backward(B);
            refOpt.step(1e-2);
            ref.afterStep();
            if (router == RouterSpec.Kind.SIGMOID) {
                for (float b : ref.params().read(ref.params().get("block0.moe.router.bias"))) {
                    biasMoved += Math.abs(b);
                }
            }
        }

        ExpertPlacement placement = new ExpertPlacement(E, w);
        // hosts = 2: UDP between "hosts" 127.0.0.1 and 127.0.0.2 (ranks alternating), the two-level all-to-all.
        CommsConfig cfg = CommsConfig.defaults(hosts == 1 ? Transport.IPC : Transport.UDP, 98)
                .withTimeouts(10_000, 10_000).withAeronDirBase(tmp).withTwoLevelAllToAll(hosts > 1);
        List<String> eps = new ArrayList<>();
        for (int r = 0; r < w; r++) {
            eps.add(hosts == 1 ? "ipc" : "127.0.0." + (1 + r % hosts) + ":" + freeUdpPort());
        }
        ExecutorService pool = Executors.newFixedThreadPool(w);
        try (EmbeddedMediaDriver driver = EmbeddedMediaDriver.acquire(cfg, "lm-" + ProcessHandle.current().pid() + "-" + w,
                w, w, 0)) {
            List<Future<java.util.Map<String, float[]>>> futures = new ArrayList<>();
            for (int r = 0; r < w; r++) {
                int rank = r;
                futures.add(pool.submit(() -> {
                    try (Member m = new Member(cfg, driver, rank, eps)) {
                        m.connect();
                        Collectives c = new Collectives(m);
                        Backend be = new CpuBackend();
                        int lo = io.roundhouse.worker.parallel.WorkerGroup.shardStart(B, rank, w);
                        int n = io.roundhouse.worker.parallel.WorkerGroup.shardStart(B, rank + 1, w) - lo;
                        int most = (B + w - 1) / w;
                        MoeTransformer model = new MoeTransformer(be, spec, 5, most,
                                b -> new AllToAllExchange(be, c, placement, 16, most * T * 2));
                        AdamW opt = optimizer(be, model);
                        // The blocks' gradient buckets start during backward, on a comms thread.
                        DenseGradientSync sync = new DenseGradientSync(be, model.params(), c, placement, 0, true);
                        model.onBlockBackward(sync::blockDone);
                        StepStats st = new StepStats(model.moeLayers(), E);
                        for (int step = 0; step < STEPS; step++) {
                            int[] all = tokens(step, rows + 1);
                            FixedBatch batch = FixedBatch.of(be, Arrays.copyOfRange(all, lo * T, (lo + n) * T),
                                    Arrays.copyOfRange(all, lo * T + 1, (lo + n) * T + 1));
                            model.params().zeroGrads();
                            model.forward(batch, n, true, 7, step, lo, st);
                            sync.backwardStarts();
                            model.backward(B);
                            opt.step(1e-2, sync.allReduce(new float[0]));
                            model.afterStep();
                        }
                        sync.close();
                        java.util.Map<String, float[]> out = new java.util.LinkedHashMap<>();
                        for (Param p : model.params().all()) {
                            out.put(p.name(), model.params().read(p));
                        }
                        return out;
                    }
                }));
            }
            double worst = 0;
            for (int r = 0; r < w; r++) {
                java.util.Map<String, float[]> all = futures.get(r).get(90, TimeUnit.SECONDS);
                assertEquals(ref.params().all().stream().map(Param::name).toList(), List.copyOf(all.keySet()),
                        "worker " + r + " has the one worker's parameters, in its order");
                int f = placement.firstExpert(r);
                int n = placement.expertCount(r);
                for (Param p : ref.params().all()) {
                    float[] got = all.get(p.name());
                    float[] want = ref.params().read(p);
                    if (p.name().contains(".experts.")) {
                        int per = want.length / E;
                        want = Arrays.copyOfRange(want, f * per, (f + n) * per);
                    }
                    assertEquals(want.length, got.length, p.name());
                    for (int j = 0; j < want.length; j++) {
                        double diff = Math.abs(want[j] - got[j]);
                        worst = Math.max(worst, diff);
                        assertTrue(diff <= 1e-4, "worker " + r + " " + p.name() + "[" + j + "]: " + got[j]
                                + " vs one worker's " + want[j]);
                    }
                }
            }
            System.out.printf("LM W=%d tied=%s router=%s shared=%d pre-gating=%s hosts=%d: worst parameter difference "
                    + "after %d steps %.2e%n", w, tied, router, shared, preGating, hosts, STEPS, worst);
            if (router == RouterSpec.Kind.SIGMOID) {
                assertTrue(biasMoved > 0, "the selection bias moved during training");
            }
        } finally {
            pool.shutdownNow();
        }
    }

    private static int freeUdpPort() throws java.io.IOException {
        try (java.net.DatagramSocket s = new java.net.DatagramSocket(0)) {
            return s.getLocalPort();
        }
    }

    @Test
    void aTinyModelMemorisesATinyText() {
        byte[] text = "In the beginning God created the heaven and the earth. ".getBytes(StandardCharsets.US_ASCII);
        int[] ids = new ByteTokenizer().encode(text);
        TokenSequences seqs = TokenSequences.pack("train", ids, 256, 0, ids.length, T);
        LmSpec spec = new LmSpec(new ModelSpec(256, 256, 32, 2, E, 2, 32, Activation.SWIGLU, NormKind.RMSNORM,
                GateMode.TOPK_SOFTMAX, 0, 0, 0, 0.01, 0.001, 0, StnSpec.NONE, Precision.FP32), T, 4, 4, 10000, 1, 64,
                true, 0);
        Backend be = new CpuBackend();
        MoeTransformer model = MoeTransformer.local(be, spec, 1, seqs.size());
        AdamW opt = new AdamW(be, model.params(), 0.9, 0.99, 1e-8, 0, 1.0);
        SequenceBatcher batches = seqs.batches(be, seqs.size(), 3);
        batches.load(0, seqs.size());
        StepStats st = new StepStats(model.moeLayers(), E);
        double loss = Double.NaN;
        for (int step = 0; step < 300; step++) {
            model.params().zeroGrads();
            loss = model.forward(batches, seqs.size(), true, 1, step, 0, st).crossEntropy;
            model.backward(seqs.size());
            opt.step(3e-3);
        }
        System.out.printf("memorised %d sequences: loss %.4f%n", seqs.size(), loss);
        assertTrue(loss < 0.1, "the loss on a text it trains on falls below 0.1, got " + loss);
    }

    @Test
    void theByteTokenizerRoundTripsAnyBytes() {
        byte[] any = new byte[4096];
        new Random(9).nextBytes(any);
        ByteTokenizer tok = new ByteTokenizer();
        int[] ids = tok.encode(any);
        for (int id : ids) {
            assertTrue(id >= 0 && id < 256);
        }
        assertArrayEquals(any, tok.decode(ids, 0, ids.length));
    }

    @Test
    void packingMakesEveryTokenATargetOncePerEpoch() {
        int n = 1000;
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = i % 251;
        }
        byte[] text = new byte[n];
        for (int i = 0; i < n; i++) {
            text[i] = (byte) ids[i];
        }
        DataSplits s = TextCorpus.splits(text, new ByteTokenizer(), 16, 0.1, "test");
        TokenSequences train = (TokenSequences) s.train();
        TokenSequences valid = (TokenSequences) s.validation();
        int[] seen = new int[n];
        int[] in = new int[16];
        int[] out = new int[16];
        for (TokenSequences set : List.of(train, valid)) {
            for (int i = 0; i < set.size(); i++) {
                set.sequence(i, in, out, 0);
                for (int t = 0; t < 16; t++) {
                    int pos = set.start(i) + t + 1;
                    assertEquals(ids[pos], out[t]);
                    assertEquals(ids[pos - 1], in[t]);
                    seen[pos]++;
                }
            }
        }
        // Train: tokens [0, 900) give (900 − 1) / 16 = 56 sequences; validation [900, 1000) gives 6.
        assertEquals(56, train.size());
        assertEquals(6, valid.size());
        for (int pos = 0; pos < n; pos++) {
            assertTrue(seen[pos] <= 1, "token " + pos + " is a target " + seen[pos] + " times");
            boolean inTrain = pos >= 1 && pos <= 56 * 16;
            boolean inValid = pos >= 901 && pos <= 900 + 6 * 16;
            assertEquals(inTrain || inValid ? 1 : 0, seen[pos], "token " + pos);
        }
    }

    @Test
    void badTextGetsOneLine() throws Exception {
        Path empty = Files.createFile(tmp.resolve("empty.txt"));
        DataException e = assertThrows(DataException.class,
                () -> TextCorpus.splits(TextCorpus.readLocal(empty.toString()), new ByteTokenizer(), 8, 0.05, "empty.txt"));
        assertEquals("the corpus empty.txt is empty; give data.text a file with text in it", e.getMessage());
        e = assertThrows(DataException.class, () -> TextCorpus.readLocal(tmp.resolve("*.none").toString()));
        assertTrue(e.getMessage().contains("matches no file"), e.getMessage());
        e = assertThrows(DataException.class, () -> TextCorpus.readLocal(tmp.resolve("missing.txt").toString()));
        assertTrue(e.getMessage().contains("no such file or folder"), e.getMessage());
        e = assertThrows(DataException.class, () -> TextCorpus.splits(new byte[100], new ByteTokenizer(), 64, 0.05, "x"));
        assertTrue(e.getMessage().startsWith("data.seqLen = 64 is longer than the corpus x allows"), e.getMessage());
    }
}
