package io.roundhouse.worker.report;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.ToDoubleFunction;

/**
 * The report's charts as data: what each plots, taken from the runs' records, for the page's script
 * ({@code report.js}) to hand to ECharts. A chart is {@code {id, section, title, note, kind, yName,
 * run, series: [{name, run, style, data}]}} ({@code run}: the run's index where the chart shows one
 * run of several); {@code kind} is {@code lines} (data {@code [[x, y], …]};
 * style {@code line}, {@code dashed}, {@code points} or {@code band} with data {@code [[x, lo, hi], …]}),
 * {@code stacked} (one run's series over the same steps: style {@code area} stacked as areas,
 * {@code total} a line over them) or {@code heatmap} (one series,
 * data {@code [[column, expert, value], …]}, with {@code columns}: the step each column ends at, and
 * {@code experts}).
 *
 * <p>Long runs are thinned to at most {@link #MAX_POINTS} points per line (each the mean over a run
 * of consecutive steps, placed at the last of them) and {@link #MAX_COLUMNS} heatmap columns, so the
 * page stays small; the chart's note says so. Charts without data (no classifier run, no Self-Tuning
 * Network) are left out.
 */
final class ReportCharts {
    /** The most points one line gets. */
    static final int MAX_POINTS = 2000;
    /** The most steps (columns) one heatmap gets. */
    static final int MAX_COLUMNS = 300;

    private static final double LN2 = Math.log(2);

    private final List<RunRecords> runs;
    private final boolean several;
    private final List<Map<String, Object>> charts = new ArrayList<>();

    private ReportCharts(List<RunRecords> runs) {
        this.runs = runs;
        this.several = runs.size() > 1;
    }

    /** The charts of {@code runs}, in page order. */
    static List<Map<String, Object>> of(List<RunRecords> runs) {
        ReportCharts c = new ReportCharts(runs);
        c.training();
        c.experts();
        c.balance();
        c.time();
        c.selfTuning();
        c.earlyExits();
        List<Map<String, Object>> drawn = new ArrayList<>();
        for (Map<String, Object> chart : c.charts) {
            if (!((List<?>) chart.get("series")).isEmpty()) {
                chart.put("id", "chart-" + drawn.size());
                drawn.add(chart);
            }
        }
        return drawn;
    }

    private void training() {
        Map<String, Object> loss = chart("Training", "loss", "nats", "lines",
                "Training loss (cross-entropy plus the router losses) and cross-entropy per step; validation "
                        + "and test cross-entropy where they were evaluated.");
        for (int k = 0; k < runs.size(); k++) {
            RunRecords r = runs.get(k);
            line(loss, k, "loss", "line", r.train, n -> num(n.path("loss")));
            line(loss, k, "cross-entropy", "dashed", r.train, n -> num(n.path("crossEntropy")));
            for (String split : splits(r)) {
                points(loss, k, split + " cross-entropy", evals(r, split), n -> num(n.path("crossEntropy")));
            }
        }
        if (runs.stream().anyMatch(r -> !r.languageModel())) {
            Map<String, Object> acc = chart("Training", "accuracy", "%", "lines",
                    "Top-1 accuracy on each training batch, and on the validation and test sets.");
            for (int k = 0; k < runs.size(); k++) {
                RunRecords r = runs.get(k);
                if (!r.languageModel()) {
                    line(acc, k, "accuracy", "line", r.train, n -> 100 * num(n.path("accuracy")));
                    for (String split : splits(r)) {
                        points(acc, k, split + " accuracy", evals(r, split), n -> 100 * num(n.path("accuracy")));
                    }
                }
            }
        }
        if (runs.stream().anyMatch(RunRecords::languageModel)) {
            Map<String, Object> bpb = chart("Training", "bits per byte", "bits/byte", "lines",
                    "The language model's objective: cross-entropy in bits per byte (nats / ln 2) on each "
                            + "training batch, and on the validation split.");
            for (int k = 0; k < runs.size(); k++) {
                RunRecords r = runs.get(k);
                if (r.languageModel()) {
                    line(bpb, k, "bits/byte", "line", r.train, n -> num(n.path("crossEntropy")) / LN2);
                    for (String split : splits(r)) {
                        points(bpb, k, split + " bits/byte", evals(r, split), n -> num(n.path("bitsPerByte")));
                    }
                }
            }
        }
        Map<String, Object> speed = chart("Training", "tokens per second", "tokens/s", "lines",
                "Predictions (tokens; examples for the classifier) trained per second of each step, all workers together.");
        Map<String, Object> dropped = chart("Training", "dropped copies", "% of routed copies", "lines",
                "Token copies the capacity limit dropped, as a share of all the copies the routers sent "
                        + "(kept + dropped, over every MoE layer); 0 when the run is dropless.");
        Map<String, Object> lr = chart("Training", "learning rate", "lr", "lines", "The schedule (warm-up, then cosine).");
        Map<String, Object> grad = chart("Training", "gradient norm", "‖g‖", "lines",
                "The global gradient norm of each step.");
        for (int k = 0; k < runs.size(); k++) {
            RunRecords r = runs.get(k);
            line(speed, k, "tokens/s", "line", r.train, n -> num(n.path("tokensPerSecond")));
            line(dropped, k, "dropped", "line", r.train, ReportCharts::droppedPercent);
            line(lr, k, "lr", "line", r.train, n -> num(n.path("lr")));
            line(grad, k, "‖g‖", "line", r.train, n -> num(n.path("gradNorm")));
        }
    }

    /** One heatmap per run and MoE layer: each expert's share of the layer's kept copies, × E (1 = even). */
    private void experts() {
        for (RunRecords r : runs) {
            if (r.train.isEmpty() || !r.train.get(0).path("expertLoad").isArray()) {
                continue;
            }
            JsonNode first = r.train.get(0).path("expertLoad");
            int layers = first.size();
            for (int b = 0; b < layers; b++) {
                int experts = first.path(b).size();
                int n = r.train.size();
                int per = (n + MAX_COLUMNS - 1) / MAX_COLUMNS;
                int columns = (n + per - 1) / per;
                List<Object> steps = new ArrayList<>();
                List<double[]> cells = new ArrayList<>();
                for (int c = 0; c < columns; c++) {
                    double[] share = new double[experts];
                    double total = 0;
                    int end = Math.min(n, (c + 1) * per);
                    for (int i = c * per; i < end; i++) {
                        JsonNode load = r.train.get(i).path("expertLoad").path(b);
                        for (int e = 0; e < experts; e++) {
                            share[e] += load.path(e).asDouble();
                            total += load.path(e).asDouble();
                        }
                    }
                    steps.add(r.train.get(end - 1).path("step").asInt());
                    for (int e = 0; e < experts; e++) {
                        cells.add(new double[] {c, e, total > 0 ? share[e] * experts / total : 0});
                    }
                }
                String title = (several ? r.name + " · " : "") + "MoE layer " + b + ": expert load";
                Map<String, Object> chart = chart("Experts", title, "expert", "heatmap",
                        "Each expert's share of the layer's kept token copies, times " + experts
                                + " (1 = an even share; 0 = idle)" + (per > 1 ? "; each column the sum over " + per
                                + " steps" : "") + ".");
                chart.put("run", runs.indexOf(r));
                chart.put("columns", steps);
                chart.put("experts", experts);
                series(chart, runs.indexOf(r), "load", "heatmap", cells);
            }
        }
    }

    /**
     * Per MoE layer over the steps: balance (the busiest expert's load over the mean), the router's
     * entropy, and the experts' mean pairwise similarity (recorded at the log steps).
     */
    private void balance() {
        Map<String, Object> load = chart("Experts", "load max / mean", "max / mean", "lines",
                "The busiest expert's kept copies over the mean, per MoE layer: 1 is perfect balance, E is every "
                        + "copy on one expert.");
        Map<String, Object> entropy = chart("Experts", "router entropy", "nats", "lines",
                "The router's mean entropy per token, per MoE layer: ln E when it spreads evenly, 0 when sure.");
        Map<String, Object> perToken = chart("Experts", "experts per token", "copies / token", "lines",
                "Kept copies per token, per MoE layer: K for top-k without drops; a dense-to-sparse router starts "
                        + "near E and falls as its temperature does; expert choice gives tokens 0 to E copies.");
        Map<String, Object> similarity = chart("Experts", "expert similarity", "cosine", "lines",
                "The mean pairwise cosine similarity of the experts' first weights, per MoE layer: near 1, "
                        + "experts that learnt the same function (over-provisioned); near 0, unrelated.");
        for (int k = 0; k < runs.size(); k++) {
            RunRecords r = runs.get(k);
            if (r.train.isEmpty()) {
                continue;
            }
            int layers = r.train.get(r.train.size() - 1).path("balance").size();
            for (int b = 0; b < layers; b++) {
                int layer = b;
                line(load, k, "layer " + b, "line", r.train,
                        n -> num(n.path("balance").path(layer).path("loadMaxOverMean")));
                line(entropy, k, "layer " + b, "line", r.train,
                        n -> num(n.path("balance").path(layer).path("entropy")));
                line(perToken, k, "layer " + b, "line", r.train,
                        n -> num(n.path("balance").path(layer).path("expertsPerToken")));
                List<JsonNode> logged = r.train.stream().filter(n -> n.has("expertSimilarity")).toList();
                line(similarity, k, "layer " + b, "line", logged, n -> num(n.path("expertSimilarity").path(layer)));
            }
        }
    }

    private void time() {
        for (int k = 0; k < runs.size(); k++) {
            RunRecords r = runs.get(k);
            Set<String> phases = new LinkedHashSet<>();
            for (JsonNode n : r.train) {
                n.path("phaseMs").fields().forEachRemaining(e -> {
                    if (e.getValue().asDouble() > 0) {
                        phases.add(e.getKey());
                    }
                });
            }
            if (phases.isEmpty()) {
                continue;
            }
            Map<String, Object> chart = chart("Time", (several ? r.name + " · " : "") + "time per phase", "ms", "stacked",
                    "Milliseconds of each step by phase (rank 0's), stacked; the line is the whole step's wall time "
                            + "(the gap above the stack is time no phase timer covers).");
            chart.put("run", k);
            for (String p : phases) {
                line(chart, k, p, "area", r.train, n -> num(n.path("phaseMs").path(p)));
            }
            line(chart, k, "step", "total", r.train, n -> num(n.path("stepMs")));
            if (r.train.get(0).has("computeMsByWorker")) {
                Map<String, Object> workers = chart("Time", (several ? r.name + " · " : "") + "compute per worker", "ms",
                        "lines", "Each worker's compute time in the step (the step waits for the slowest).");
                workers.put("run", k);
                for (int w = 0; w < r.train.get(0).path("computeMsByWorker").size(); w++) {
                    int rank = w;
                    line(workers, k, "worker " + w, "line", r.train, n -> num(n.path("computeMsByWorker").path(rank)));
                }
            }
        }
        Map<String, Object> comm = chart("Time", "communication share", "% of step", "lines",
                "The share of each step rank 0 spent in the exchanges and the all-reduce.");
        for (int k = 0; k < runs.size(); k++) {
            line(comm, k, "communication", "line", runs.get(k).train, n -> 100 * num(n.path("commShare")));
        }
    }

    /** The Self-Tuning Network's hyperparameters: λ and its band per round, and the loss the hyper steps saw. */
    private void selfTuning() {
        Set<String> names = new LinkedHashSet<>();
        for (RunRecords r : runs) {
            for (JsonNode h : r.hyper) {
                h.path("lambda").fieldNames().forEachRemaining(names::add);
            }
        }
        for (String name : names) {
            Map<String, Object> chart = chart("Self-Tuning Network", name, "λ", "lines",
                    "λ after each hyper-step round; band: T(u − σ) … T(u + σ), the spread the weight steps sample from.");
            for (int k = 0; k < runs.size(); k++) {
                List<JsonNode> rounds = runs.get(k).hyper.stream().filter(h -> h.path("lambda").has(name)).toList();
                if (rounds.isEmpty()) {
                    continue;
                }
                List<double[]> band = new ArrayList<>();
                for (JsonNode h : rounds) {
                    JsonNode b = h.path("band").path(name);
                    if (b.isArray()) {
                        band.add(new double[] {h.path("step").asDouble(), b.path(0).asDouble(), b.path(1).asDouble()});
                    }
                }
                if (!band.isEmpty()) {
                    series(chart, k, "band", "band", band);
                }
                line(chart, k, "λ", "line", rounds, h -> num(h.path("lambda").path(name)));
            }
        }
        if (!names.isEmpty()) {
            Map<String, Object> chart = chart("Self-Tuning Network", "validation loss in the hyper steps", "nats", "lines",
                    "The validation batch's loss each hyper-step round saw.");
            for (int k = 0; k < runs.size(); k++) {
                line(chart, k, "validation loss", "line", runs.get(k).hyper, h -> num(h.path("validLoss")));
            }
        }
    }

    private static double droppedPercent(JsonNode n) {
        double kept = 0;
        for (JsonNode layer : n.path("expertLoad")) {
            for (JsonNode e : layer) {
                kept += e.asDouble();
            }
        }
        double dropped = num(n.path("droppedCopies"));
        return kept + dropped > 0 ? 100 * dropped / (kept + dropped) : 0;
    }

    /** A record's number, or NaN (left out of the chart) when it is missing or not finite ("NaN" is written as text). */
    private static double num(JsonNode v) {
        return v.isNumber() ? v.asDouble() : Double.NaN;
    }

    private static Set<String> splits(RunRecords r) {
        Set<String> s = new LinkedHashSet<>();
        r.eval.forEach(n -> s.add(n.path("split").asText()));
        return s;
    }

    private static List<JsonNode> evals(RunRecords r, String split) {
        return r.eval.stream().filter(n -> n.path("split").asText().equals(split)).toList();
    }

    /**
     * {@code roundhouse early-exit}'s curve: test accuracy against the average compute per image, as
     * a share of the full-depth forward's FLOPs and of its measured wall time (one point per λ), and
     * the full depth.
     */
    private void earlyExits() {
        Map<String, Object> c = chart("Early exits", "accuracy against compute", "%", "lines",
                "Test accuracy of JEI-DNN exits against the average compute per image (percent of the full-depth "
                        + "forward: FLOPs from the shapes, and wall time composed of each block's measured time), one "
                        + "point per lambda of the sweep; the full depth at 100.");
        c.put("xName", "compute, % of full depth");
        for (int k = 0; k < runs.size(); k++) {
            RunRecords r = runs.get(k);
            if (r.earlyExit.isEmpty()) {
                continue;
            }
            List<JsonNode> sorted = new ArrayList<>(r.earlyExit);
            sorted.sort(java.util.Comparator.comparingDouble(n -> n.path("flopsFraction").asDouble()));
            for (String[] axis : new String[][] {{"flopsFraction", "FLOPs"}, {"wallFraction", "wall time"}}) {
                List<double[]> data = new ArrayList<>();
                for (JsonNode n : sorted) {
                    data.add(new double[] {100 * n.path(axis[0]).asDouble(), 100 * n.path("accuracy").asDouble()});
                }
                series(c, k, "exits (" + axis[1] + ")", axis[1].equals("FLOPs") ? "line" : "dashed", data);
            }
            for (JsonNode ref : r.earlyExitReference) {
                List<double[]> full = new ArrayList<>();
                full.add(new double[] {100, 100 * ref.path("accuracy").asDouble()});
                series(c, k, "full depth", "points", full);
            }
        }
    }

    private Map<String, Object> chart(String section, String title, String yName, String kind, String note) {
        Map<String, Object> c = new LinkedHashMap<>();
        c.put("section", section);
        c.put("title", title);
        c.put("note", note);
        c.put("kind", kind);
        c.put("yName", yName);
        c.put("series", new ArrayList<Map<String, Object>>());
        charts.add(c);
        return c;
    }

    /** A line of {@code value} over the records' steps, thinned to {@link #MAX_POINTS} means. */
    private void line(Map<String, Object> chart, int run, String name, String style, List<JsonNode> records,
                      ToDoubleFunction<JsonNode> value) {
        if (records.isEmpty()) {
            return;
        }
        int per = (records.size() + MAX_POINTS - 1) / MAX_POINTS;
        List<double[]> data = new ArrayList<>();
        for (int start = 0; start < records.size(); start += per) {
            int end = Math.min(records.size(), start + per);
            double sum = 0;
            int count = 0;
            for (int i = start; i < end; i++) {
                double v = value.applyAsDouble(records.get(i));
                if (Double.isFinite(v)) {
                    sum += v;
                    count++;
                }
            }
            if (count > 0) {
                data.add(new double[] {records.get(end - 1).path("step").asDouble(), sum / count});
            }
        }
        if (data.isEmpty()) {
            return;
        }
        if (per > 1 && !chart.get("note").toString().contains("thinned")) {
            chart.put("note", chart.get("note") + " Thinned for the page: each point the mean over up to " + per
                    + " steps.");
        }
        series(chart, run, name, style, data);
    }

    /** Evaluations as points, unthinned (there are few). */
    private void points(Map<String, Object> chart, int run, String name, List<JsonNode> records,
                        ToDoubleFunction<JsonNode> value) {
        List<double[]> data = new ArrayList<>();
        for (JsonNode n : records) {
            data.add(new double[] {num(n.path("step")), value.applyAsDouble(n)});
        }
        if (!data.isEmpty()) {
            series(chart, run, name, "points", data);
        }
    }

    @SuppressWarnings("unchecked")
    private void series(Map<String, Object> chart, int run, String name, String style, List<double[]> data) {
        Map<String, Object> s = new LinkedHashMap<>();
        // A chart of one run among several names the run in its title, not in each series.
        s.put("name", several && !chart.containsKey("run") ? runs.get(run).name + " " + name : name);
        s.put("run", run);
        s.put("style", style);
        s.put("data", data);
        ((List<Map<String, Object>>) chart.get("series")).add(s);
    }
}
