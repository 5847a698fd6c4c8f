package io.roundhouse.driver.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.roundhouse.worker.UserException;
import io.roundhouse.worker.config.ConfigKeys;
import io.roundhouse.worker.config.JobConfig;
import io.roundhouse.worker.train.ModelKind;
import io.roundhouse.worker.train.RunFiles;
import io.roundhouse.worker.train.Trainer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * {@code roundhouse bench routers}: the configured model trained with each router at equal active
 * parameters (expert FFN width per token) and an equal token budget, a fraction of the configured
 * run's, plus the dense model of the same active width; per arm and seed the figure of merit
 * (validation bits per byte for the language model, test accuracy for the classifier), tokens/s,
 * the balance over the last tenth of the steps (busiest expert's load over the mean, dropped %),
 * and the parameters. Writes {@code report.md}, {@code results.json} and each run's folder under
 * {@code --out}; a run whose folder already holds a finished run of the same configuration is
 * not run again, so an interrupted comparison continues where it stopped.
 *
 * <p>The arms, from the configured E experts, top-K, hidden width F:
 * <ul>
 *   <li>{@code softmax}: the configuration as it is (its gate, its router losses);</li>
 *   <li>{@code switch}: top-1 of E, width K·F, {@code softmax_topk} gates, capacity factor 1.25 and
 *   router jitter 0.01 (Switch Transformer);</li>
 *   <li>{@code sigmoid}: DeepSeek-V3's sigmoid router balanced by its bias, no load-balancing loss;</li>
 *   <li>{@code noisy}: Shazeer's noisy top-K with its importance and load losses;</li>
 *   <li>{@code dense-to-sparse}: the temperature gate annealed from 2 to 0.1 over the run, up to all E
 *   experts per token while their gate is ≥ 0.1 (dense at first: more active width early, fewer
 *   experts per token at the end, reported);</li>
 *   <li>{@code expert-choice}: each expert takes K·T/E of the batch's T tokens (capacity factor 1: K
 *   experts per token on average); the language model evaluates with token choice (top-K);</li>
 *   <li>{@code shared}: one shared expert of width F plus top-(K−1) routed (DeepSeekMoE; K ≥ 2);</li>
 *   <li>{@code fine}: 2E experts of width F/2, top-2K (fine-grained: equal total and active width);</li>
 *   <li>{@code dense}: no experts, one FFN of width K·F (the language model: {@code model.moeEvery=0};
 *   the classifier: one expert of width K·F, which is the dense model).</li>
 * </ul>
 */
final class RouterBench {
    private final JobConfig base;
    private final List<Long> seeds;
    private final double fraction;
    private final List<String> only;
    private final Path out;

    /** @param only the arms to run (empty: every one) */
    RouterBench(JobConfig base, List<Long> seeds, double fraction, List<String> only, Path out) {
        this.base = base;
        this.seeds = seeds;
        this.fraction = fraction;
        this.only = only;
        this.out = out;
    }

    /** One run's arm, seed, settings and outcome. */
    record Run(String arm, long seed, Map<String, String> overrides, Trainer.Result result, JsonNode summary,
               double loadMaxOverMean, double droppedPercent, double expertsPerToken) {
    }

    /**
     * The comparison the routers issue asks for, unattended: the default language model
     * ({@code conf/kjv-moe-lm.conf}) with the first of {@code seeds}, then the default classifier
     * (the built-in defaults, which the shipped {@code conf/fashion-mnist-moe.conf} states) with every
     * seed; each under its own folder of {@code out}, and one {@code report.md} of both.
     */
    static Map<String, Object> defaults(List<Long> seeds, double fraction, List<String> only, Path out,
                                        PrintWriter console)
            throws IOException {
        Path lmConf = Installation.file("conf/kjv-moe-lm.conf");
        if (lmConf == null) {
            throw new UserException(UserException.USAGE, "bench routers without -c compares the default language model "
                    + "(conf/kjv-moe-lm.conf) and classifier, and conf/kjv-moe-lm.conf is not beside this installation "
                    + "or in the working folder; give -c CONF to compare one model");
        }
        long started = System.nanoTime();
        Map<String, Object> results = new LinkedHashMap<>();
        RouterBench lm = new RouterBench(JobConfig.load(lmConf, Map.of()), seeds.subList(0, 1), fraction, only,
                out.resolve("lm"));
        results.put("lm", lm.run(console));
        RouterBench classifier = new RouterBench(JobConfig.defaults(), seeds, fraction, only, out.resolve("classifier"));
        results.put("classifier", classifier.run(console));
        double minutes = (System.nanoTime() - started) / 60e9;
        results.put("wallMinutes", minutes);
        String report = Files.readString(out.resolve("lm").resolve("report.md")) + "\n"
                + Files.readString(out.resolve("classifier").resolve("report.md"))
                + String.format(Locale.ROOT, "%nBoth comparisons: %.0f minutes (finished runs reused are not counted "
                + "again).%n", minutes);
        RunFiles.writeAtomically(out.resolve("report.md"), report);
        console.printf("bench routers: both comparisons in %.0f minutes; %s%n", minutes, out.resolve("report.md"));
        return results;
    }

    /** The arms' overrides of the configured model (see the class comment). */
    Map<String, Map<String, String>> arms() {
        int e = base.get(ConfigKeys.MODEL_EXPERTS);
        int k = base.get(ConfigKeys.MODEL_TOP_K);
        int f = base.get(ConfigKeys.MODEL_EXPERT_HIDDEN);
        boolean lm = ModelKind.of(base) == ModelKind.LANGUAGE_MODEL;
        Map<String, Map<String, String>> arms = new LinkedHashMap<>();
        arms.put("softmax", Map.of());
        arms.put("switch", Map.of("model.topK", "1", "model.expertHidden", String.valueOf(k * f),
                "model.gate", "softmax_topk", "model.capacityFactor", "1.25", "model.routerJitter", "0.01"));
        arms.put("sigmoid", Map.of("model.router", "sigmoid", "model.gate", ConfigKeys.MODEL_GATE.defaultText(),
                "loss.loadBalance", "0"));
        String gate = ConfigKeys.MODEL_GATE.defaultText();
        String alpha = ConfigKeys.LOSS_LOAD_BALANCE.defaultText();
        arms.put("noisy", Map.of("model.router", "noisy", "loss.loadBalance", alpha));
        arms.put("dense-to-sparse", Map.of("model.router", "dense-to-sparse", "model.gate", gate,
                "model.topK", String.valueOf(e), "model.routerThreshold", "0.1"));
        arms.put("expert-choice", Map.of("model.router", "expert-choice", "model.gate", gate, "loss.loadBalance", alpha,
                "model.capacityFactor", "1", "model.expertChoiceCausal", lm ? "on" : "off"));
        if (k >= 2) {
            arms.put("shared", Map.of("model.sharedExperts", "1", "model.topK", String.valueOf(k - 1)));
        }
        if (f % 2 == 0) {
            arms.put("fine", Map.of("model.experts", String.valueOf(2 * e), "model.topK", String.valueOf(2 * k),
                    "model.expertHidden", String.valueOf(f / 2)));
        }
        arms.put("dense", lm ? Map.of("model.moeEvery", "0")
                : Map.of("model.experts", "1", "model.topK", "1", "model.expertHidden", String.valueOf(k * f),
                "loss.loadBalance", "0", "loss.zLoss", "0"));
        for (String arm : only) {
            if (!arms.containsKey(arm)) {
                throw new UserException(UserException.USAGE, "--arms: no arm '" + arm + "' for this model; choose "
                        + "from " + String.join(", ", arms.keySet()));
            }
        }
        if (!only.isEmpty()) {
            arms.keySet().retainAll(only);
        }
        return arms;
    }

    Map<String, Object> run(PrintWriter console) throws IOException {
        try {
            Files.createDirectories(out);
        } catch (IOException e) {
            throw UserException.cannotWrite(out, e);
        }
        int steps = budget();
        Map<String, Map<String, String>> arms = arms();
        console.printf("bench routers: %d arms × %d seeds, %d steps each (%.3g of the configured run), in %s%n",
                arms.size(), seeds.size(), steps, fraction, out);
        console.flush();
        warmUp(Math.min(steps, 30));
        List<Run> runs = new ArrayList<>();
        for (long seed : seeds) {
            for (Map.Entry<String, Map<String, String>> arm : arms.entrySet()) {
                Run r = train(arm.getKey(), seed, arm.getValue(), steps);
                runs.add(r);
                console.printf("  %-15s seed %d: %s  %,.0f tok/s  load max/mean %.2f  dropped %.1f%%  experts/token "
                        + "%.2f%n", r.arm, r.seed, figure(r), r.result.tokensPerSecond(), r.loadMaxOverMean,
                        r.droppedPercent, r.expertsPerToken);
                console.flush();
            }
        }
        Map<String, Object> results = summarise(runs, steps);
        String report = report(results);
        RunFiles.writeAtomically(out.resolve("report.md"), report);
        RunFiles.writeAtomically(out.resolve("results.json"),
                new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(results) + "\n");
        console.print(report);
        console.flush();
        return results;
    }

    /**
     * A short run of the configured model, thrown away, so the first arm's tokens/s does not pay
     * for compiling the code the others find compiled.
     */
    private void warmUp(int steps) throws IOException {
        Path dir = Files.createTempDirectory("roundhouse-bench-routers-warmup");
        try {
            new Trainer(base.with(Map.of("train.maxSteps", Integer.toString(steps), "workers", "1",
                    "output.dir", dir.toString(), "checkpoint.everySteps", "0")),
                    new PrintStream(new ByteArrayOutputStream())).run();
        } finally {
            TrainBench.deleteTree(dir);
        }
    }

    /** The steps of each run: {@code fraction} of the configured run's, at least one. */
    private int budget() {
        int batch = base.get(ConfigKeys.TRAIN_BATCH_SIZE);
        int epochs = base.get(ConfigKeys.TRAIN_EPOCHS);
        int full = ModelKind.of(base).loadLocal(base).train().size() / batch * epochs;
        int max = base.get(ConfigKeys.TRAIN_MAX_STEPS);
        if (max > 0) {
            full = Math.min(full, max);
        }
        return Math.max(1, (int) Math.round(full * fraction));
    }

    private Run train(String arm, long seed, Map<String, String> overrides, int steps) throws IOException {
        Map<String, String> m = new LinkedHashMap<>(overrides);
        m.put("train.seed", Long.toString(seed));
        m.put("train.maxSteps", Integer.toString(steps));
        m.put("workers", "1");
        Path dir = out.resolve(arm + "-seed" + seed);
        m.put("output.dir", dir.toString());
        JobConfig c = base.with(m);
        Trainer.Result r = StnExperiment.finished(dir, c);
        if (r == null) {
            r = new Trainer(c, new PrintStream(new ByteArrayOutputStream())).run();
        }
        ObjectMapper json = new ObjectMapper();
        JsonNode summary = json.readTree(r.runDir().resolve("summary.json").toFile());
        // balance over the last tenth of the steps
        List<JsonNode> train = new ArrayList<>();
        for (String line : Files.readAllLines(r.runDir().resolve("metrics.jsonl"))) {
            JsonNode n = json.readTree(line);
            if ("train".equals(n.path("type").asText()) && n.path("step").asInt() > steps - Math.max(1, steps / 10)) {
                train.add(n);
            }
        }
        double load = 0;
        double dropped = 0;
        double perToken = 0;
        int count = 0;
        for (JsonNode n : train) {
            for (JsonNode layer : n.path("balance")) {
                load += layer.path("loadMaxOverMean").asDouble();
                dropped += layer.path("droppedPercent").asDouble();
                perToken += layer.path("expertsPerToken").asDouble();
                count++;
            }
        }
        return new Run(arm, seed, overrides, r, summary, count == 0 ? Double.NaN : load / count,
                count == 0 ? 0 : dropped / count, count == 0 ? Double.NaN : perToken / count);
    }

    /** The run's figure of merit, as the report writes it. */
    private String figure(Run r) {
        return ModelKind.of(base) == ModelKind.LANGUAGE_MODEL
                ? String.format(Locale.ROOT, "validation %.4f bits/byte", bitsPerByte(r))
                : String.format(Locale.ROOT, "test %.2f%%", 100 * r.result.testAccuracy());
    }

    private static double bitsPerByte(Run r) {
        return r.result.testLoss() / Math.log(2);
    }

    private Map<String, Object> summarise(List<Run> runs, int steps) {
        boolean lm = ModelKind.of(base) == ModelKind.LANGUAGE_MODEL;
        Map<String, Object> results = new LinkedHashMap<>();
        results.put("model", base.get(ConfigKeys.MODEL_KIND));
        results.put("steps", steps);
        results.put("fraction", fraction);
        results.put("seeds", seeds);
        results.put("metric", lm ? "validation bits per byte (lower is better)" : "test accuracy (higher is better)");
        Map<String, Object> arms = new LinkedHashMap<>();
        for (String arm : arms().keySet()) {
            List<Run> mine = runs.stream().filter(r -> r.arm.equals(arm)).toList();
            double[] v = mine.stream().mapToDouble(r -> lm ? bitsPerByte(r) : 100 * r.result.testAccuracy()).toArray();
            double mean = java.util.Arrays.stream(v).average().orElse(Double.NaN);
            double spread = v.length < 2 ? 0 : Math.sqrt(java.util.Arrays.stream(v).map(x -> (x - mean) * (x - mean))
                    .sum() / (v.length - 1));
            Map<String, Object> a = new LinkedHashMap<>();
            a.put("overrides", mine.isEmpty() ? Map.of() : mine.get(0).overrides);
            a.put("values", v);
            a.put("mean", mean);
            a.put("sd", spread);
            a.put("tokensPerSecond", mine.stream().mapToDouble(r -> r.result.tokensPerSecond()).average().orElse(0));
            a.put("loadMaxOverMean", mine.stream().mapToDouble(Run::loadMaxOverMean).average().orElse(Double.NaN));
            a.put("droppedPercent", mine.stream().mapToDouble(Run::droppedPercent).average().orElse(0));
            a.put("expertsPerToken", mine.stream().mapToDouble(Run::expertsPerToken).average().orElse(Double.NaN));
            a.put("parameters", mine.isEmpty() ? 0 : mine.get(0).summary.path("parameters").asLong());
            arms.put(arm, a);
        }
        results.put("arms", arms);
        return results;
    }

    @SuppressWarnings("unchecked")
    private String report(Map<String, Object> results) {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "# Routers compared: %s, %s steps (%.3g of the configured run), seeds %s%n%n",
                results.get("model"), results.get("steps"), fraction, seeds));
        sb.append("Metric: ").append(results.get("metric")).append("; mean ± sd over the seeds. Balance over the last "
                + "tenth of the steps, averaged over the MoE layers.\n\n");
        sb.append("| arm | metric | tokens/s | load max/mean | dropped % | experts/token | parameters | overrides |\n");
        sb.append("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
        ((Map<String, Map<String, Object>>) results.get("arms")).forEach((arm, a) -> {
            double load = (double) a.get("loadMaxOverMean");
            double perToken = (double) a.get("expertsPerToken");
            sb.append(String.format(Locale.ROOT, "| %s | %.4f ± %.4f | %,.0f | %s | %.2f | %s | %,d | %s |%n", arm,
                    (double) a.get("mean"), (double) a.get("sd"), (double) a.get("tokensPerSecond"),
                    Double.isNaN(load) ? "– (no experts)" : String.format(Locale.ROOT, "%.2f", load),
                    (double) a.get("droppedPercent"),
                    Double.isNaN(perToken) || Double.isNaN(load) ? "–" : String.format(Locale.ROOT, "%.2f", perToken),
                    (long) a.get("parameters"), a.get("overrides")));
        });
        return sb.toString();
    }
}
