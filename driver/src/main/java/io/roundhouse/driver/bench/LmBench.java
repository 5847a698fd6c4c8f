package io.roundhouse.driver.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.kernels.cpu.CpuBackend;
import io.roundhouse.worker.UserException;
import io.roundhouse.worker.config.ConfigKeys;
import io.roundhouse.worker.config.JobConfig;
import io.roundhouse.worker.data.TextCorpus;
import io.roundhouse.worker.export.ModelExport;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * {@code roundhouse bench lm}: the language model's training throughput, side by side in one run
 * with its PyTorch twin ({@code scripts/roundhouse_twin.py bench}) at the same shapes, batch,
 * losses, optimizer and thread count, and attention's forward+backward GFLOP/s against sgemm.
 *
 * <ol>
 *   <li>Attention forward+backward on the CPU backend at the model's shapes, counting the six
 *   causal matmuls of the textbook formula (QKᵀ and PV forward; dV, dP, dQ, dK backward), against
 *   sgemm at one head's shape (T×T×dh) and at 1024³.</li>
 *   <li>Training with each worker count ({@link TrainBench}): tokens/s and ms per phase.</li>
 *   <li>The first run's export (its final weights) trained on by the twin for the same number of
 *   steps, on random windows of the same training bytes.</li>
 * </ol>
 * Roundhouse's cores are the BLAS threads of the first run ({@code OPENBLAS_NUM_THREADS}, else
 * every core): the twin gets as many. Without {@code /usr/bin/python3} and torch, or without the
 * twin script, the PyTorch column is left out with a line saying why.
 */
final class LmBench {
    static final String PYTHON = "/usr/bin/python3";
    static final String TWIN = "scripts/roundhouse_twin.py";

    private final JobConfig c;
    private final List<Integer> workers;
    private final int steps;
    private final double seconds;

    LmBench(JobConfig c, List<Integer> workers, int steps, double seconds) {
        if (!c.get(ConfigKeys.MODEL_KIND).equals("lm")) {
            throw new UserException(UserException.USAGE, "bench lm measures the language model, and this config has "
                    + "model.kind=" + c.get(ConfigKeys.MODEL_KIND) + "; give -c conf/kjv-moe-lm.conf (or model.kind=lm)");
        }
        this.c = c;
        this.workers = workers;
        this.steps = steps;
        this.seconds = seconds;
    }

    Map<String, Object> run(PrintWriter out, PrintWriter err) throws IOException, InterruptedException {
        Map<String, Object> report = new LinkedHashMap<>();
        int threads = blasThreads();
        report.put("cores", Runtime.getRuntime().availableProcessors());
        report.put("threads", threads);
        out.printf("bench lm: %d blocks, D %d, %d heads, T %d, %d experts top-%d F %d, batch %d sequences; "
                        + "%d cores, %d BLAS threads%n", c.get(ConfigKeys.MODEL_BLOCKS), c.get(ConfigKeys.MODEL_DIM),
                c.get(ConfigKeys.MODEL_HEADS), c.get(ConfigKeys.DATA_SEQ_LEN), c.get(ConfigKeys.MODEL_EXPERTS),
                c.get(ConfigKeys.MODEL_TOP_K), c.get(ConfigKeys.MODEL_EXPERT_HIDDEN), c.get(ConfigKeys.TRAIN_BATCH_SIZE),
                Runtime.getRuntime().availableProcessors(), threads);
        report.put("attention", attention(out));
        out.flush();
        Path scratch = Files.createTempDirectory("roundhouse-bench-lm");
        boolean done = false;
        try {
            TrainBench train = new TrainBench(c, workers, steps);
            Map<String, Object> roundhouse = train.measureAll(scratch, "roundhouse", out, err);
            report.put("roundhouse", roundhouse);
            Map<String, Object> torch = twin(scratch, train.warmup(), threads, out);
            report.put("pytorch", torch);
            if (torch.containsKey("tokensPerSecond")) {
                @SuppressWarnings("unchecked")
                Map<String, Object> first = ((List<Map<String, Object>>) roundhouse.get("runs")).get(0);
                double ratio = (double) first.get("tokensPerSecond") / ((Number) torch.get("tokensPerSecond")).doubleValue();
                report.put("roundhouseOverPytorch", ratio);
                out.printf("Roundhouse W=%d over PyTorch %s (%d threads): %.2fx the tokens/s%n", workers.get(0),
                        torch.get("torch"), threads, ratio);
            }
            done = true;
        } finally {
            TrainBench.keepOnFailure(scratch, done, "bench lm", err);
        }
        return report;
    }

    /** OpenBLAS's threads in this JVM: its environment variable, else one per core (its default). */
    static int blasThreads() {
        String env = System.getenv("OPENBLAS_NUM_THREADS");
        try {
            return env == null || env.isBlank() ? Runtime.getRuntime().availableProcessors() : Integer.parseInt(env.trim());
        } catch (NumberFormatException e) {
            return Runtime.getRuntime().availableProcessors();
        }
    }

    /** Causal attention forward+backward at the model's shapes on the CPU backend, against sgemm. */
    private Map<String, Object> attention(PrintWriter out) {
        int b = c.get(ConfigKeys.TRAIN_BATCH_SIZE);
        int t = c.get(ConfigKeys.DATA_SEQ_LEN);
        int h = c.get(ConfigKeys.MODEL_HEADS);
        int kv = c.get(ConfigKeys.MODEL_KV_HEADS) == 0 ? h : c.get(ConfigKeys.MODEL_KV_HEADS);
        int dh = c.get(ConfigKeys.MODEL_DIM) / h;
        // each of the six matmuls: 2·dh flops per (query, key) pair, T(T+1)/2 causal pairs per head
        double flops = 6 * 2.0 * dh * (t * (t + 1) / 2.0) * b * h;
        double rate;
        try (Backend be = new CpuBackend()) {
            Tensor q = KernelBench.tensor(be, b * t, h * dh);
            Tensor k = KernelBench.tensor(be, b * t, kv * dh);
            Tensor v = KernelBench.tensor(be, b * t, kv * dh);
            Tensor o = KernelBench.tensor(be, b * t, h * dh);
            Tensor lse = KernelBench.tensor(be, b * t, h);
            Tensor dOut = KernelBench.tensor(be, b * t, h * dh);
            Tensor dq = KernelBench.tensor(be, b * t, h * dh);
            Tensor dk = KernelBench.tensor(be, b * t, kv * dh);
            Tensor dv = KernelBench.tensor(be, b * t, kv * dh);
            float scale = (float) (1 / Math.sqrt(dh));
            rate = KernelBench.rate(seconds, flops, () -> {
                be.attentionForward(o, lse, q, k, v, b, h, kv, scale, null, 0, 0, 0);
                be.attentionBackward(dq, dk, dv, dOut, o, lse, q, k, v, b, h, kv, scale, null, 0, 0, 0);
            });
        }
        double head = KernelBench.sgemmRate(seconds, t, t, dh);
        double peak = KernelBench.sgemmRate(seconds, 1024, 1024, 1024);
        out.printf("%-64s %8.1f GFLOP/s%n", String.format("attention fwd+bwd (B %d, H %d, T %d, dh %d; 6 causal matmuls)",
                b, h, t, dh), rate);
        out.printf("%-64s %8.1f GFLOP/s%n", String.format("sgemm %dx%dx%d (one head's T x T x dh)", t, t, dh), head);
        out.printf("%-64s %8.1f GFLOP/s%n", "sgemm 1024x1024x1024", peak);
        out.printf("attention over sgemm at one head's shape: %.2f   over sgemm 1024^3: %.2f%n", rate / head, rate / peak);
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("fwdBwdGflopsPerSec", rate);
        r.put("sgemmHeadShapeGflopsPerSec", head);
        r.put("sgemm1024GflopsPerSec", peak);
        r.put("ratioToHeadShapeSgemm", rate / head);
        r.put("ratioToSgemm1024", rate / peak);
        return r;
    }

    /**
     * The PyTorch twin trained from the first run's final weights for as many steps, at the same
     * batch, losses, optimizer settings and threads; an empty-but-for-"skipped" map when it cannot run.
     */
    private Map<String, Object> twin(Path scratch, int warmup, int threads, PrintWriter out)
            throws IOException, InterruptedException {
        Map<String, Object> r = new LinkedHashMap<>();
        String why = twinMissing();
        if (why != null) {
            out.println("pytorch: skipped: " + why);
            r.put("skipped", why);
            return r;
        }
        // the first run's own export (every run leaves one) holds its final weights
        Path model = TrainBench.runDir(scratch.resolve("w" + workers.get(0))).resolve(ModelExport.RUN_FOLDER);
        if (!Files.exists(model.resolve(ModelExport.WEIGHTS))) {
            throw new UserException(UserException.USAGE, "bench lm: the first run left no export for the PyTorch twin "
                    + "(its last line says why)");
        }
        Path text = scratch.resolve("train.bytes");
        byte[] all = TextCorpus.readLocal(c.get(ConfigKeys.DATA_TEXT));
        double held = c.get(ConfigKeys.DATA_VALIDATION_FRACTION);
        Files.write(text, Arrays.copyOf(all, (int) (all.length * (1 - held))));
        List<String> cmd = new ArrayList<>(List.of(PYTHON, twinScript().toString(), "bench", "--model", model.toString(),
                "--text", text.toString(), "--batch", String.valueOf(c.get(ConfigKeys.TRAIN_BATCH_SIZE)),
                "--steps", String.valueOf(steps - warmup), "--warmup", String.valueOf(warmup),
                "--threads", String.valueOf(threads), "--lr", String.valueOf(c.get(ConfigKeys.TRAIN_LR)),
                "--weight-decay", String.valueOf(c.get(ConfigKeys.TRAIN_WEIGHT_DECAY)),
                "--beta1", String.valueOf(c.get(ConfigKeys.TRAIN_BETA1)),
                "--beta2", String.valueOf(c.get(ConfigKeys.TRAIN_BETA2)),
                "--clip", String.valueOf(c.get(ConfigKeys.TRAIN_CLIP_NORM)),
                "--load-balance", String.valueOf(c.get(ConfigKeys.LOSS_LOAD_BALANCE)),
                "--z-loss", String.valueOf(c.get(ConfigKeys.LOSS_Z))));
        Path log = scratch.resolve("pytorch.log");
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        if (!p.waitFor(30, TimeUnit.MINUTES)) {
            p.destroyForcibly();
            throw new UserException(UserException.USAGE, "bench lm: the PyTorch twin ran past 30 minutes; " + log);
        }
        List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
        String last = lines.isEmpty() ? "" : lines.get(lines.size() - 1);
        if (p.exitValue() != 0 || !last.startsWith("{")) {
            throw new UserException(UserException.USAGE, "bench lm: the PyTorch twin failed (exit " + p.exitValue()
                    + "): " + last + " (whole output in " + log + ")");
        }
        JsonNode j = new ObjectMapper().readTree(last);
        r.put("torch", j.get("torch").asText());
        r.put("threads", j.get("threads").asInt());
        r.put("tokensPerSecond", j.get("tokensPerSecond").asDouble());
        r.put("stepMs", j.get("stepMs").asDouble());
        Map<String, Double> phases = new LinkedHashMap<>();
        j.get("phaseMs").fields().forEachRemaining(e -> phases.put(e.getKey(), e.getValue().asDouble()));
        r.put("phaseMs", phases);
        out.printf("pytorch %s, %d threads: %,10.0f tok/s  step %.2f ms (median)   forward %.2f  backward %.2f  "
                        + "optimizer %.2f%n", r.get("torch"), r.get("threads"), r.get("tokensPerSecond"), r.get("stepMs"),
                phases.get("forward"), phases.get("backward"), phases.get("optimizer"));
        return r;
    }

    /** Why the twin cannot run here, or null when it can. */
    private static String twinMissing() throws InterruptedException {
        if (twinScript() == null) {
            return TWIN + " was not found beside this installation or in the working folder";
        }
        return torchMissing();
    }

    /** Why {@link #PYTHON} cannot import torch here, or null when it can. */
    static String torchMissing() throws InterruptedException {
        if (!Files.isExecutable(Path.of(PYTHON))) {
            return PYTHON + " is not installed (apt-get install python3-torch)";
        }
        try {
            Process p = new ProcessBuilder(PYTHON, "-c", "import torch").redirectErrorStream(true).start();
            p.getInputStream().transferTo(java.io.OutputStream.nullOutputStream());
            if (!p.waitFor(2, TimeUnit.MINUTES) || p.exitValue() != 0) {
                return "PyTorch is not importable by " + PYTHON + " (apt-get install python3-torch)";
            }
        } catch (IOException e) {
            return PYTHON + " does not start (" + e.getMessage() + ")";
        }
        return null;
    }

    /** The twin script of this installation, else of the working folder; null if neither. */
    static Path twinScript() {
        return Installation.file(TWIN);
    }
}
