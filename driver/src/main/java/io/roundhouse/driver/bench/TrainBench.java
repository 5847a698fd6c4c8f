package io.roundhouse.driver.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.roundhouse.driver.LocalLauncher;
import io.roundhouse.worker.config.ConfigKeys;
import io.roundhouse.worker.config.JobConfig;
import io.roundhouse.worker.train.Trainer;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.Writer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * {@code roundhouse bench train --workers 1,2}: trains the configured model for a fixed number of
 * steps with each worker count (W = 1 in this JVM, W > 1 as worker JVMs through the local
 * launcher) and reports steady-state tokens/s against W = 1 of the same run, the step time, and
 * the share of rank 0's step spent communicating and waiting (dispatch, combine, all-reduce), with
 * the other phases. "wait" is how much longer the slowest worker computed than rank 0 (the part of
 * rank 0's communication time that is waiting for a peer, not moving data). The first {@code warmup} steps (JIT compilation, first touches) are left out.
 */
final class TrainBench {
    private final JobConfig base;
    private final List<Integer> workers;
    private final int steps;
    private final int warmup;

    TrainBench(JobConfig base, List<Integer> workers, int steps) {
        this.base = base;
        this.workers = workers;
        this.steps = steps;
        this.warmup = steps * 3 / 10;
    }

    /** The steps left out at the start of each run. */
    int warmup() {
        return warmup;
    }

    Map<String, Object> run(PrintWriter out, PrintWriter err) throws IOException, InterruptedException {
        Path scratch = Files.createTempDirectory("roundhouse-bench-train");
        Map<String, Object> report = new LinkedHashMap<>();
        boolean done = false;
        try {
            report.putAll(measureAll(scratch, "bench train", out, err));
            done = true;
        } finally {
            keepOnFailure(scratch, done, "bench train", err);
        }
        return report;
    }

    /**
     * Trains with each worker count, the run of W workers in {@code scratch/wW}; prints a line per
     * run and returns the report (the settings and a row per run).
     */
    Map<String, Object> measureAll(Path scratch, String title, PrintWriter out, PrintWriter err)
            throws IOException, InterruptedException {
        Map<String, Object> report = new LinkedHashMap<>();
        report.put("batchSize", base.get(ConfigKeys.TRAIN_BATCH_SIZE));
        report.put("tokensPerStep", tokensPerStep());
        report.put("steps", steps);
        report.put("measuredSteps", steps - warmup);
        report.put("transport", base.get(ConfigKeys.COMMS_TRANSPORT));
        List<Map<String, Object>> rows = new ArrayList<>();
        out.printf("%s: %d steps per worker count (first %d left out), batch %d (%d tokens), transport %s, %d cores%n",
                title, steps, warmup, base.get(ConfigKeys.TRAIN_BATCH_SIZE), tokensPerStep(),
                base.get(ConfigKeys.COMMS_TRANSPORT), Runtime.getRuntime().availableProcessors());
        out.printf("%3s %10s %8s %9s %9s %7s %9s %10s   %s%n", "W", "tok/s", "vs W=1", "step ms", "comm ms", "comm %",
                "wait ms", "KB/step", "phases (ms per step, rank 0, forward + backward each; other: outside every phase)");
        double baseline = Double.NaN;
        for (int w : workers) {
            Map<String, Object> row = measure(w, scratch.resolve("w" + w), err);
            double tps = (double) row.get("tokensPerSecond");
            if (w == workers.get(0)) {
                baseline = tps;
            }
            row.put("vsFirst", tps / baseline);
            rows.add(row);
            @SuppressWarnings("unchecked")
            Map<String, Double> phases = (Map<String, Double>) row.get("phaseMs");
            StringBuilder sb = new StringBuilder();
            phases.forEach((k, v) -> {
                if (v >= 0.005) {
                    sb.append(k).append(' ').append(String.format("%.2f", v)).append("  ");
                }
            });
            out.printf("%3d %,10.0f %8.2f %9.2f %9.2f %6.1f%% %9.2f %10.1f   %s%n", w, tps, tps / baseline,
                    row.get("stepMs"), row.get("commMs"), 100 * (double) row.get("commShare"), row.get("waitMs"),
                    (double) row.get("allocatedBytesPerStep") / 1024, sb.toString().trim());
            out.flush();
        }
        report.put("runs", rows);
        return report;
    }

    /** Deletes {@code scratch} after a complete benchmark; after a failure keeps it and says where. */
    static void keepOnFailure(Path scratch, boolean done, String title, PrintWriter err) throws IOException {
        if (done) {
            deleteTree(scratch);
        } else {
            err.println(title + ": the runs' folders (metrics, worker logs) are kept in " + scratch);
            err.flush();
        }
    }

    /** Tokens in one optimizer step: examples, or sequences times their length for the language model. */
    private int tokensPerStep() {
        int batch = base.get(ConfigKeys.TRAIN_BATCH_SIZE);
        return base.get(ConfigKeys.MODEL_KIND).equals("lm") ? batch * base.get(ConfigKeys.DATA_SEQ_LEN) : batch;
    }

    /** The run folder the trainer made under {@code output} (one per measured run). */
    static Path runDir(Path output) throws IOException {
        try (Stream<Path> s = Files.list(output)) {
            return s.filter(Files::isDirectory).findFirst().orElseThrow(
                    () -> new IOException("no run folder in " + output));
        }
    }

    private Map<String, Object> measure(int w, Path output, PrintWriter err) throws IOException, InterruptedException {
        Map<String, String> overrides = new LinkedHashMap<>(base.asMap());
        overrides.put(ConfigKeys.WORKERS.name(), String.valueOf(w));
        overrides.put(ConfigKeys.TRAIN_MAX_STEPS.name(), String.valueOf(steps));
        overrides.put(ConfigKeys.OUTPUT_DIR.name(), output.toString());
        overrides.put(ConfigKeys.LOG_EVERY_STEPS.name(), String.valueOf(steps));
        // one checkpoint, after the last step (bench lm exports it), none among the timed steps
        overrides.put(ConfigKeys.CHECKPOINT_EVERY_STEPS.name(), String.valueOf(steps));
        JobConfig config = JobConfig.of(overrides);
        if (w == 1) {
            new Trainer(config, new PrintStream(OutputStream.nullOutputStream())).run();
        } else {
            int code = new LocalLauncher(config, new PrintWriter(Writer.nullWriter()), err).run();
            if (code != 0) {
                // The launcher printed the workers' error above.
                throw new io.roundhouse.worker.UserException(code, "bench train: the run with " + w
                        + " workers failed (the lines above say why)");
            }
        }
        Path runDir = runDir(output);
        ObjectMapper json = new ObjectMapper();
        double stepSeconds = 0;
        double comm = 0;
        double wait = 0;
        Map<String, Double> phases = new LinkedHashMap<>();
        int n = 0;
        for (String line : Files.readAllLines(runDir.resolve("metrics.jsonl"))) {
            JsonNode r = json.readTree(line);
            if (!r.get("type").asText().equals("train") || r.get("step").asInt() <= warmup) {
                continue;
            }
            double sec = r.get("stepMs").asDouble() / 1000;
            stepSeconds += sec;
            comm += r.get("commShare").asDouble() * sec;
            JsonNode byWorker = r.get("computeMsByWorker");
            if (byWorker != null) {
                double max = 0;
                for (JsonNode v : byWorker) {
                    max = Math.max(max, v.asDouble());
                }
                wait += max - byWorker.get(0).asDouble();
            }
            double named = 0;
            for (Map.Entry<String, JsonNode> e : (Iterable<Map.Entry<String, JsonNode>>) r.get("phaseMs")::fields) {
                phases.merge(e.getKey(), e.getValue().asDouble(), Double::sum);
                named += e.getValue().asDouble();
            }
            phases.merge("other", sec * 1000 - named, Double::sum);
            n++;
        }
        int count = n;
        phases.replaceAll((k, v) -> v / count);
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("workers", w);
        row.put("tokensPerSecond", (double) n * tokensPerStep() / stepSeconds);
        row.put("stepMs", 1000 * stepSeconds / n);
        row.put("commMs", 1000 * comm / n);
        row.put("commShare", comm / stepSeconds);
        row.put("waitMs", wait / n);
        row.put("phaseMs", phases);
        JsonNode summary = json.readTree(runDir.resolve("summary.json").toFile());
        // rank 0's JVM, every thread, from 30% of the steps on (W = 1 runs in this JVM)
        row.put("allocatedBytesPerStep", summary.path("allocatedBytesPerStep").asDouble(Double.NaN));
        return row;
    }

    static void deleteTree(Path root) throws IOException {
        if (!Files.exists(root)) {
            return;
        }
        try (Stream<Path> s = Files.walk(root)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }
}
