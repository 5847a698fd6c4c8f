package io.roundhouse.driver.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.roundhouse.kernels.Activation;
import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.Blas;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.kernels.cpu.CpuBackend;
import io.roundhouse.worker.config.JobConfig;
import io.roundhouse.worker.model.LocalExchange;
import io.roundhouse.worker.model.ModelSpec;
import io.roundhouse.worker.model.MoeLayer;
import io.roundhouse.worker.model.ParamStore;
import io.roundhouse.worker.model.PhaseTimers;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * {@code roundhouse bench layer}: one MoE layer's forward + backward on the CPU (dropless, the
 * softmax router over the top-k logits, experts without biases as the language model's), against
 * baselines measured in the same run:
 *
 * <ul>
 *   <li>the <b>GEMM-only ideal</b>: the expert GEMMs alone, back to back through the same BLAS and
 *   threads after the same warm-up, each expert with its share of the token copies at perfect
 *   balance (N·K/E rows): the two forward GEMMs and the four backward ones, 6·N·K·D·(F1 + F) FLOPs
 *   (12·N·K·D·F when F1 = F); it cannot beat those FLOPs at the run's sgemm rate, which the
 *   output states as {@code ideal_floor_ms};</li>
 *   <li>the <b>sgemm peak</b> at 1024³;</li>
 *   <li><b>PyTorch</b> at the same shapes and threads ({@code scripts/torch_layer_bench.py}, a
 *   router, a loop over the experts, {@code index_add_}), where {@code /usr/bin/python3} imports
 *   torch.</li>
 * </ul>
 *
 * <p>Times are the median (and min, max) over repetitions that fill {@code seconds} after a warm-up
 * of a quarter of it. The JSON's {@code layer_ms}, {@code ideal_ms} and {@code sgemm_gflops} are
 * stable names: the performance goals are judged by them.
 */
final class LayerBench {
    static final String TORCH_SCRIPT = "scripts/torch_layer_bench.py";
    static final String DJL_SCRIPT = "scripts/djl-layer-bench";

    private final int tokens;
    private final int dim;
    private final int ffn;
    private final int experts;
    private final int topK;
    private final Activation activation;
    private final double seconds;

    LayerBench(int tokens, int dim, int ffn, int experts, int topK, Activation activation, double seconds) {
        this.tokens = tokens;
        this.dim = dim;
        this.ffn = ffn;
        this.experts = experts;
        this.topK = topK;
        this.activation = activation;
        this.seconds = seconds;
    }

    Map<String, Object> run(PrintWriter out) throws IOException, InterruptedException {
        int threads = LmBench.blasThreads();
        out.printf(Locale.ROOT, "bench layer: %d tokens, D=%d, F=%d (%s), top-%d of %d experts; BLAS %s, %d threads%n",
                tokens, dim, ffn, activation.name().toLowerCase(Locale.ROOT), topK, experts, Blas.implementation(),
                threads);
        out.flush();
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("tokens", tokens);
        r.put("dim", dim);
        r.put("ffn", ffn);
        r.put("experts", experts);
        r.put("topk", topK);
        r.put("activation", activation.name().toLowerCase(Locale.ROOT));
        r.put("threads", threads);
        r.put("blas", Blas.implementation());
        // The peak: the better of two large squares (measured: 1024³ ran at 193 GFLOP/s where the ideal's
        // own GEMMs at the large shapes ran at 196, which would put the ideal below its floor).
        double peak1024 = KernelBench.sgemmRate(seconds, 1024, 1024, 1024);
        double peak2048 = KernelBench.sgemmRate(seconds, 2048, 2048, 2048);
        double peak = Math.max(peak1024, peak2048);
        r.put("sgemm_gflops", peak);
        r.put("sgemm1024_gflops", peak1024);
        r.put("sgemm2048_gflops", peak2048);
        double[] layer = layer(r);
        double[] ideal = ideal();
        double flops = 6.0 * tokens * topK * dim * (activation.preWidth(ffn) + ffn);
        r.put("layer_ms", layer[0]);
        r.put("layer_min_ms", layer[1]);
        r.put("layer_max_ms", layer[2]);
        r.put("layer_mean_ms", layer[3]);
        r.put("ideal_ms", ideal[0]);
        r.put("ideal_min_ms", ideal[1]);
        r.put("ideal_max_ms", ideal[2]);
        r.put("ideal_gflop", flops / 1e9);
        r.put("ideal_floor_ms", flops / (peak * 1e9) * 1e3);
        r.put("layer_over_ideal", layer[0] / ideal[0]);
        r.put("non_gemm_share", 1 - ideal[0] / layer[0]);
        out.printf(Locale.ROOT, "sgemm peak: %.1f GFLOP/s (1024^3 %.1f, 2048^3 %.1f)%n", peak, peak1024, peak2048);
        out.printf(Locale.ROOT, "MoE layer fwd+bwd: %.2f ms median (min %.2f, max %.2f)%n", layer[0], layer[1], layer[2]);
        out.printf(Locale.ROOT, "GEMM-only ideal:   %.2f ms median (min %.2f, max %.2f); %.3f GFLOP, at least %.2f ms at "
                + "the sgemm peak%n", ideal[0], ideal[1], ideal[2], flops / 1e9, flops / (peak * 1e9) * 1e3);
        out.printf(Locale.ROOT, "layer / ideal: %.2fx   everything but the expert GEMMs: %.1f%% of the layer%s   "
                + "allocated: %,.0f bytes per repetition%n", layer[0] / ideal[0], 100 * (1 - ideal[0] / layer[0]),
                layer[0] < ideal[0] ? " (the ideal ran slower than the layer: this run's noise is larger than the gap;"
                        + " compare the minimums and the floor)" : "", r.get("allocated_bytes_per_rep"));
        @SuppressWarnings("unchecked")
        Map<String, Double> phases = (Map<String, Double>) r.get("phases_ms");
        StringBuilder sb = new StringBuilder(String.format(Locale.ROOT, "phases (mean ms per repetition, of %.2f ms "
                + "mean):", layer[3]));
        phases.forEach((k, v) -> sb.append(String.format(Locale.ROOT, " %s %.2f", k, v)));
        out.println(sb);
        peer("pytorch", torch(threads, out), layer[0], r, out);
        peer("pytorch_djl", djl(threads, out), layer[0], r, out);
        out.flush();
        return r;
    }

    /** The layer's repetitions: {median, min, max, mean} ms; its mean phases go into {@code r}. */
    private double[] layer(Map<String, Object> r) {
        JobConfig c = JobConfig.of(Map.of("model.dim", String.valueOf(dim), "model.experts", String.valueOf(experts),
                "model.topK", String.valueOf(topK), "model.expertHidden", String.valueOf(ffn),
                "model.activation", activation.name().toLowerCase(Locale.ROOT), "model.gate", "topk_softmax",
                "model.capacityFactor", "0", "loss.loadBalance", "0", "loss.zLoss", "0"));
        ModelSpec spec = ModelSpec.from(c, 1, 1);
        try (Backend be = new CpuBackend()) {
            ParamStore ps = new ParamStore(be, 1);
            MoeLayer moe = new MoeLayer(be, ps, "moe", spec, new LocalExchange(experts), tokens, false);
            PhaseTimers timers = new PhaseTimers();
            moe.setTimers(timers);
            Tensor x = KernelBench.tensor(be, tokens, dim);
            Tensor dy = KernelBench.tensor(be, tokens, dim);
            long[] reps = {0};
            long[] allocated = new long[1];
            double[] t = repeat(() -> {
                moe.forward(x, 0);
                long named = timers.total();
                long b0 = System.nanoTime();
                moe.backward(dy);
                timers.add(PhaseTimers.Phase.BACKWARD, System.nanoTime() - b0 - (timers.total() - named));
                reps[0]++;
            }, () -> {
                timers.reset();
                reps[0] = 0;
                allocated[0] = io.roundhouse.worker.train.Allocation.bytes();
            });
            long bytes = io.roundhouse.worker.train.Allocation.bytes() - allocated[0];
            r.put("allocated_bytes_per_rep", (double) bytes / reps[0]);
            Map<String, Double> phases = new LinkedHashMap<>();
            for (PhaseTimers.Phase p : PhaseTimers.Phase.values()) {
                if (timers.nanos(p) > 0) {
                    phases.put(p.name().toLowerCase(Locale.ROOT), timers.nanos(p) / 1e6 / reps[0]);
                }
            }
            r.put("phases_ms", phases);
            return t;
        }
    }

    /** The expert GEMMs alone at perfect balance: {median, min, max, mean} ms. */
    private double[] ideal() {
        int rows = Math.max(1, tokens * topK / experts);
        int f1 = activation.preWidth(ffn);
        float[][] w1 = new float[experts][];
        float[][] w2 = new float[experts][];
        float[][] dw1 = new float[experts][];
        float[][] dw2 = new float[experts][];
        for (int e = 0; e < experts; e++) {
            w1[e] = random(dim * f1, e);
            w2[e] = random(ffn * dim, e + 100);
            dw1[e] = new float[dim * f1];
            dw2[e] = new float[ffn * dim];
        }
        float[] x = random(rows * dim, 7);
        float[] a = new float[rows * f1];
        float[] h = random(rows * ffn, 8);
        float[] y = new float[rows * dim];
        float[] dy = random(rows * dim, 9);
        float[] dh = new float[rows * ffn];
        float[] da = random(rows * f1, 10);
        float[] dx = new float[rows * dim];
        return repeat(() -> {
            for (int e = 0; e < experts; e++) {
                // forward: a = x·W1, y = h·W2; backward: dW2 = hᵀ·dy, dh = dy·W2ᵀ, dW1 = xᵀ·da, dx = da·W1ᵀ
                Blas.sgemm(false, false, rows, f1, dim, 1f, x, 0, dim, w1[e], 0, f1, 0f, a, 0, f1);
                Blas.sgemm(false, false, rows, dim, ffn, 1f, h, 0, ffn, w2[e], 0, dim, 0f, y, 0, dim);
                Blas.sgemm(true, false, ffn, dim, rows, 1f, h, 0, ffn, dy, 0, dim, 1f, dw2[e], 0, dim);
                Blas.sgemm(false, true, rows, ffn, dim, 1f, dy, 0, dim, w2[e], 0, dim, 0f, dh, 0, ffn);
                Blas.sgemm(true, false, dim, f1, rows, 1f, x, 0, dim, da, 0, f1, 1f, dw1[e], 0, f1);
                Blas.sgemm(false, true, rows, dim, f1, 1f, da, 0, f1, w1[e], 0, f1, 0f, dx, 0, dim);
            }
        }, () -> { });
    }

    /**
     * Runs {@code call} for a quarter of the time (at least 3 times) to warm up, then {@code reset},
     * then as many timed repetitions as fill the time (at least 5): {median, min, max, mean} ms.
     */
    private double[] repeat(Runnable call, Runnable reset) {
        long start = System.nanoTime();
        int warm = 0;
        while (warm < 3 || System.nanoTime() - start < seconds / 4 * 1e9) {
            call.run();
            warm++;
        }
        reset.run();
        List<Double> ms = new ArrayList<>();
        start = System.nanoTime();
        while (ms.size() < 5 || System.nanoTime() - start < seconds * 1e9) {
            long t0 = System.nanoTime();
            call.run();
            ms.add((System.nanoTime() - t0) / 1e6);
        }
        double[] sorted = ms.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        int n = sorted.length;
        double median = n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
        return new double[] {median, sorted[0], sorted[n - 1], Arrays.stream(sorted).average().orElseThrow()};
    }

    private static float[] random(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed * 1_000_003L + n);
        float[] v = new float[n];
        for (int j = 0; j < n; j++) {
            v[j] = (float) (r.nextDouble() - 0.5) * 0.1f;
        }
        return v;
    }

    /** A peer's result under {@code key} (and {@code key_ms}, {@code speed_vs_key}), and its line. */
    private static void peer(String key, Map<String, Object> peer, double layerMs, Map<String, Object> r,
                             PrintWriter out) {
        r.put(key, peer);
        if (peer.containsKey("layer_ms")) {
            double t = ((Number) peer.get("layer_ms")).doubleValue();
            r.put(key + "_ms", t);
            r.put("speed_vs_" + key, t / layerMs);
            out.printf(Locale.ROOT, "pytorch %s, %d threads: %.2f ms median: Roundhouse runs at %.2fx its speed%n",
                    peer.get("torch"), ((Number) peer.get("threads")).intValue(), t, t / layerMs);
        }
    }

    /** PyTorch's layer at the same shapes and threads; a map with "skipped" when it cannot run. */
    private Map<String, Object> torch(int threads, PrintWriter out) throws IOException, InterruptedException {
        Path script = Installation.file(TORCH_SCRIPT);
        String why = script == null ? TORCH_SCRIPT + " was not found beside this installation or in the working folder"
                : LmBench.torchMissing();
        if (why != null) {
            out.println("pytorch: skipped: " + why);
            return new LinkedHashMap<>(Map.of("skipped", why));
        }
        List<String> cmd = new java.util.ArrayList<>(List.of(LmBench.PYTHON, script.toString()));
        cmd.addAll(shapeArgs(threads));
        return run(cmd, "PyTorch's layer");
    }

    /**
     * PyTorch 2.7 through DJL ({@code scripts/djl-layer-bench}) at the same shapes and threads; a
     * map with "skipped" when the script or its libraries (fetched once with {@code --fetch}) are absent.
     */
    private Map<String, Object> djl(int threads, PrintWriter out) throws IOException, InterruptedException {
        Path script = Installation.file(DJL_SCRIPT);
        if (script == null) {
            String why = DJL_SCRIPT + " was not found beside this installation or in the working folder";
            out.println("pytorch (DJL): skipped: " + why);
            return new LinkedHashMap<>(Map.of("skipped", why));
        }
        List<String> cmd = new java.util.ArrayList<>(List.of(script.toString()));
        cmd.addAll(shapeArgs(threads));
        try {
            return run(cmd, "PyTorch's layer through DJL");
        } catch (io.roundhouse.worker.UserException e) {
            if (e.getMessage().contains("--fetch")) {
                String why = "DJL's PyTorch is not in the local Maven repository: run " + DJL_SCRIPT + " --fetch once";
                out.println("pytorch (DJL): skipped: " + why);
                return new LinkedHashMap<>(Map.of("skipped", why));
            }
            throw e;
        }
    }

    private List<String> shapeArgs(int threads) {
        return List.of("--tokens", String.valueOf(tokens), "--dim", String.valueOf(dim), "--ffn", String.valueOf(ffn),
                "--experts", String.valueOf(experts), "--topk", String.valueOf(topK), "--activation",
                activation.name().toLowerCase(Locale.ROOT), "--threads", String.valueOf(threads), "--seconds",
                String.valueOf(seconds));
    }

    /** Runs a peer's command; its last line is its JSON result. */
    private static Map<String, Object> run(List<String> cmd, String what) throws IOException, InterruptedException {
        Map<String, Object> r = new LinkedHashMap<>();
        Path log = Files.createTempFile("roundhouse-torch-layer", ".log");
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
            if (!p.waitFor(30, TimeUnit.MINUTES)) {
                p.destroyForcibly();
                throw new io.roundhouse.worker.UserException(io.roundhouse.worker.UserException.RUNTIME,
                        "bench layer: " + what + " ran past 30 minutes");
            }
            List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
            String last = lines.isEmpty() ? "" : lines.get(lines.size() - 1);
            if (p.exitValue() != 0 || !last.startsWith("{")) {
                throw new io.roundhouse.worker.UserException(io.roundhouse.worker.UserException.RUNTIME,
                        "bench layer: " + what + " failed (exit " + p.exitValue() + "): " + String.join("\n", lines));
            }
            JsonNode j = new ObjectMapper().readTree(last);
            j.fields().forEachRemaining(e -> r.put(e.getKey(), e.getValue().isNumber() ? e.getValue().numberValue()
                    : e.getValue().asText()));
            return r;
        } finally {
            Files.deleteIfExists(log);
        }
    }
}
