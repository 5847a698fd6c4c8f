package io.roundhouse.driver.bench;

import com.fasterxml.jackson.databind.JsonNode;
import io.roundhouse.worker.report.RunReport;
import io.roundhouse.worker.train.MetricsWriter;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * {@code bench cluster}'s results as a markdown summary and an HTML page whose charts (ECharts, as
 * the run reports) are drawn by {@code cluster.js} from chart specs made here:
 * {@code {id, title, note, kind, xName, xLog, yName, yLog, series: [{name, style, data}]}}, kind
 * {@code lines} (data {@code [[x, y], …]}, style {@code line}, {@code dashed} or {@code points}) or
 * {@code heatmap} (data {@code [[column, row, value], …]} over {@code labels}).
 */
final class ClusterReport {
    private ClusterReport() {
    }

    static String markdown(JsonNode r) {
        StringBuilder md = new StringBuilder("# bench cluster\n\n");
        md.append(String.format(Locale.ROOT, "Master `%s`, comms.transport `%s`, comms.allToAll `%s`, %.2f s per "
                        + "measurement, %.0f s in all.%n%n", r.path("master").asText(), r.path("transport").asText(),
                r.path("allToAll").asText(), r.path("secondsPerMeasurement").asDouble(), r.path("wallSeconds").asDouble()));
        JsonNode links = r.path("links");
        if (!links.isMissingNode()) {
            int w = links.path("workers").asInt();
            md.append("## Links\n\nHosts by rank: ").append(links.path("hosts")).append(". One-way latency (µs) / "
                    + "bandwidth (MB/s, ").append(links.path("p2pMessageBytes").asInt() >> 20)
                    .append(" MiB messages) from the row's worker to the column's.\n\n|  |");
            for (int j = 0; j < w; j++) {
                md.append(' ').append(j).append(" |");
            }
            md.append("\n|---|").append("---|".repeat(w)).append('\n');
            for (int i = 0; i < w; i++) {
                md.append("| ").append(i).append(" |");
                for (int j = 0; j < w; j++) {
                    md.append(i == j ? " – |" : String.format(Locale.ROOT, " %.1f / %.0f |",
                            links.path("latencySeconds").path(i).path(j).asDouble() * 1e6,
                            links.path("bandwidthBytesPerSecond").path(i).path(j).asDouble() / 1e6));
                }
                md.append('\n');
            }
            md.append(String.format(Locale.ROOT, "%nmemcpy (rank 0, 16 MiB): %.2f GB/s.%n%n",
                    links.path("memcpyBytesPerSecond").asDouble() / 1e9));
            md.append("## Collectives\n\nSize: bytes each worker holds; algbw = size / time; busbw = algbw · (W−1)/W "
                    + "(all-to-all), · 2(W−1)/W (all-reduce), as nccl-tests reports them. Model: the α–β fit below.\n\n"
                    + "| collective | bytes | time µs | algbw GB/s | busbw GB/s | model µs | measured / model |\n"
                    + "|---|---:|---:|---:|---:|---:|---:|\n");
            JsonNode checks = r.path("costModel").path("collectives");
            int k = 0;
            for (JsonNode c : links.path("collectives")) {
                double model = checks.path(k++).path("modelSeconds").asDouble();
                md.append(String.format(Locale.ROOT, "| %s | %,d | %.1f | %.4f | %.4f | %.1f | %.2f |%n", c.path("op").asText(),
                        c.path("bytes").asLong(), c.path("seconds").asDouble() * 1e6,
                        c.path("algbwBytesPerSecond").asDouble() / 1e9, c.path("busbwBytesPerSecond").asDouble() / 1e9,
                        model * 1e6, c.path("seconds").asDouble() / model));
            }
        }
        md.append("\n## One MoE layer: scaling\n\nForward, backward and the router gradient's all-reduce on random "
                + "tokens; weak: each worker keeps the config's tokens per step, strong: they are split over the "
                + "workers. Step: the slowest worker's mean; phases: the workers' mean (ms).\n\n"
                + "| scaling | W | hosts | tokens/worker | step ms | tokens/s | comm share | phases |\n"
                + "|---|---:|---:|---:|---:|---:|---:|---|\n");
        for (JsonNode l : r.path("layers")) {
            StringBuilder phases = new StringBuilder();
            l.path("phaseMs").fields().forEachRemaining(e -> phases.append(phases.length() == 0 ? "" : ", ")
                    .append(e.getKey()).append(String.format(Locale.ROOT, " %.2f", e.getValue().asDouble())));
            md.append(String.format(Locale.ROOT, "| %s | %d | %d | %,d | %.2f | %,.0f | %.1f%% | %s |%n",
                    l.path("scaling").asText(), l.path("workers").asInt(), l.path("hosts").asInt(),
                    l.path("tokensPerWorker").asInt(), l.path("stepSeconds").asDouble() * 1e3,
                    l.path("tokensPerSecond").asDouble(), 100 * l.path("commShare").asDouble(), phases));
        }
        JsonNode cm = r.path("costModel");
        if (!cm.isMissingNode()) {
            JsonNode l = cm.path("links");
            md.append(String.format(Locale.ROOT, "%n## α–β model%n%nFitted (medians over the pairs): within a host "
                            + "α = %.1f µs, 1/β = %.1f MB/s; between hosts α = %.1f µs, 1/β = %.1f MB/s; memcpy %.2f GB/s; "
                            + "%d workers per host.%s%n",
                    l.path("alphaIntra").asDouble() * 1e6, 1e-6 / l.path("betaIntra").asDouble(),
                    l.path("alphaInter").asDouble() * 1e6, 1e-6 / l.path("betaInter").asDouble(),
                    1e-9 / l.path("gamma").asDouble(), cm.path("workersPerHost").asInt(),
                    cm.has("note") ? " (" + cm.path("note").asText() + ")" : ""));
            if (cm.has("layers")) {
                md.append("\nThe layer's measured step beside the model's (compute from W = 1):\n\n"
                        + "| scaling | W | measured ms | model ms | measured comm | model comm |\n|---|---:|---:|---:|---:|---:|\n");
                for (JsonNode x : cm.path("layers")) {
                    md.append(String.format(Locale.ROOT, "| %s | %d | %.2f | %.2f | %.1f%% | %.1f%% |%n",
                            x.path("scaling").asText(), x.path("workers").asInt(), x.path("measuredSeconds").asDouble() * 1e3,
                            x.path("modelSeconds").asDouble() * 1e3, 100 * x.path("measuredCommShare").asDouble(),
                            100 * x.path("modelCommShare").asDouble()));
                }
            }
            if (cm.has("predictions")) {
                JsonNode m = r.path("model");
                md.append(String.format(Locale.ROOT, "%nPredicted training step of the configured %s (%d MoE layers, "
                                + "%,d tokens per worker, %,d dense parameters; compute %.2f ms measured at W = 1), "
                                + "weak scaling:%n%n| W | flat step ms | flat comm | two-level step ms | two-level comm |%n"
                                + "|---:|---:|---:|---:|---:|%n", m.path("kind").asText(), m.path("moeLayers").asInt(),
                        m.path("tokensPerStep").asInt(), m.path("denseParameters").asLong(),
                        m.path("computeSeconds").asDouble() * 1e3));
                JsonNode flat = cm.path("predictions").path("flat");
                JsonNode two = cm.path("predictions").path("twoLevel");
                for (int i = 0; i < flat.size(); i++) {
                    md.append(String.format(Locale.ROOT, "| %d | %.2f | %.1f%% | %.2f | %.1f%% |%n",
                            flat.path(i).path("workers").asInt(), flat.path(i).path("stepSeconds").asDouble() * 1e3,
                            100 * flat.path(i).path("commShare").asDouble(), two.path(i).path("stepSeconds").asDouble() * 1e3,
                            100 * two.path(i).path("commShare").asDouble()));
                }
            }
        }
        return md.toString();
    }

    static String html(JsonNode r) {
        List<Map<String, Object>> charts = charts(r);
        StringBuilder h = new StringBuilder(1 << 21);
        h.append("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Roundhouse bench cluster"
                + "</title>\n<style>\n").append(read("io/roundhouse/worker/report/report.css"))
                .append("</style>\n<script>\n").append(read("io/roundhouse/worker/report/report-errors.js"))
                .append("</script>\n</head>\n<body>\n<h1>Roundhouse bench cluster</h1>\n<p class=\"meta\">")
                .append(RunReport.escape(String.format(Locale.ROOT, "master %s · comms.transport %s · comms.allToAll %s",
                        r.path("master").asText(), r.path("transport").asText(), r.path("allToAll").asText())))
                .append("</p>\n<pre id=\"console-errors\" hidden></pre>\n");
        for (Map<String, Object> c : charts) {
            h.append("<h3>").append(RunReport.escape((String) c.get("title"))).append("</h3>\n<p class=\"note\">")
                    .append(RunReport.escape((String) c.get("note"))).append("</p>\n<div class=\"chart\" id=\"")
                    .append(c.get("id")).append("\"></div>\n");
        }
        h.append("<h2>Summary</h2>\n<pre>").append(RunReport.escape(markdown(r))).append("</pre>\n");
        Map<String, Object> data = Map.of("charts", charts);
        h.append("<script type=\"application/json\" id=\"report-data\">")
                .append(MetricsWriter.toJson(data).replace("</", "<\\/")).append("</script>\n");
        h.append("<script>\n").append(RunReport.echarts()).append("\n</script>\n<script>\n")
                .append(read("io/roundhouse/worker/report/chart-record.js"))
                .append(read("io/roundhouse/driver/bench/cluster.js")).append("</script>\n</body>\n</html>\n");
        return h.toString();
    }

    static List<Map<String, Object>> charts(JsonNode r) {
        List<Map<String, Object>> charts = new ArrayList<>();
        JsonNode links = r.path("links");
        if (!links.isMissingNode()) {
            Map<String, Object> bus = chart("Bus bandwidth by size", "busbw as nccl-tests reports it (solid) and "
                    + "algbw (dashed), per collective.", "lines", "bytes per worker", true, "GB/s", true);
            Map<String, Object> time = chart("Time by size: measured and the α–β model", "Measured (points) and "
                    + "predicted by the model fitted to the point-to-point links (lines).", "lines", "bytes per worker",
                    true, "µs", true);
            Map<String, List<double[]>> busBy = new LinkedHashMap<>();
            Map<String, List<double[]>> algBy = new LinkedHashMap<>();
            Map<String, List<double[]>> measured = new LinkedHashMap<>();
            Map<String, List<double[]>> model = new LinkedHashMap<>();
            JsonNode checks = r.path("costModel").path("collectives");
            int k = 0;
            for (JsonNode c : links.path("collectives")) {
                String op = c.path("op").asText();
                double b = c.path("bytes").asDouble();
                busBy.computeIfAbsent(op, x -> new ArrayList<>()).add(new double[] {b, c.path("busbwBytesPerSecond").asDouble() / 1e9});
                algBy.computeIfAbsent(op, x -> new ArrayList<>()).add(new double[] {b, c.path("algbwBytesPerSecond").asDouble() / 1e9});
                measured.computeIfAbsent(op, x -> new ArrayList<>()).add(new double[] {b, c.path("seconds").asDouble() * 1e6});
                double m = checks.path(k++).path("modelSeconds").asDouble();
                if (m > 0) {
                    model.computeIfAbsent(op, x -> new ArrayList<>()).add(new double[] {b, m * 1e6});
                }
            }
            busBy.forEach((op, d) -> series(bus, op + " busbw", "line", d));
            algBy.forEach((op, d) -> series(bus, op + " algbw", "dashed", d));
            measured.forEach((op, d) -> series(time, op + " measured", "points", d));
            model.forEach((op, d) -> series(time, op + " model", "line", d));
            charts.add(bus);
            charts.add(time);
            int w = links.path("workers").asInt();
            List<String> labels = new ArrayList<>();
            for (int i = 0; i < w; i++) {
                labels.add(i + " (" + links.path("hosts").path(i).asText() + ")");
            }
            Map<String, Object> lat = chart("Point-to-point one-way latency", "Half the round trip of an 8-byte "
                    + "ping-pong, µs; row: from, column: to.", "heatmap", "to", false, "from", false);
            Map<String, Object> bw = chart("Point-to-point bandwidth", "MB/s of a stream of "
                    + (links.path("p2pMessageBytes").asInt() >> 20) + " MiB messages; row: from, column: to.", "heatmap",
                    "to", false, "from", false);
            List<double[]> latCells = new ArrayList<>();
            List<double[]> bwCells = new ArrayList<>();
            for (int i = 0; i < w; i++) {
                for (int j = 0; j < w; j++) {
                    if (i != j) {
                        latCells.add(new double[] {j, i, links.path("latencySeconds").path(i).path(j).asDouble() * 1e6});
                        bwCells.add(new double[] {j, i, links.path("bandwidthBytesPerSecond").path(i).path(j).asDouble() / 1e6});
                    }
                }
            }
            lat.put("labels", labels);
            bw.put("labels", labels);
            series(lat, "latency µs", "cells", latCells);
            series(bw, "bandwidth MB/s", "cells", bwCells);
            charts.add(lat);
            charts.add(bw);
        }
        Map<String, Object> scaling = chart("One MoE layer: tokens/s by workers", "Weak (each worker keeps its "
                + "tokens) and strong (the tokens split over the workers) scaling; dashed: W times the W = 1 rate.",
                "lines", "workers", false, "tokens/s", false);
        Map<String, Object> share = chart("One MoE layer: communication share of the step", "Dispatch, combine and "
                + "the all-reduce over the slowest worker's step.", "lines", "workers", false, "%", false);
        for (String s : List.of("weak", "strong")) {
            List<double[]> tps = new ArrayList<>();
            List<double[]> ideal = new ArrayList<>();
            List<double[]> comm = new ArrayList<>();
            double base = 0;
            for (JsonNode l : r.path("layers")) {
                if (l.path("scaling").asText().equals(s)) {
                    int w = l.path("workers").asInt();
                    base = w == 1 ? l.path("tokensPerSecond").asDouble() : base;
                    tps.add(new double[] {w, l.path("tokensPerSecond").asDouble()});
                    comm.add(new double[] {w, 100 * l.path("commShare").asDouble()});
                }
            }
            for (double[] p : tps) {
                if (base > 0) {
                    ideal.add(new double[] {p[0], base * p[0]});
                }
            }
            series(scaling, s, "line", tps);
            if (s.equals("weak")) {
                series(scaling, "ideal", "dashed", ideal);
            }
            series(share, s, "line", comm);
        }
        charts.add(scaling);
        charts.add(share);
        JsonNode predictions = r.path("costModel").path("predictions");
        if (!predictions.isMissingNode()) {
            Map<String, Object> step = chart("Predicted training step of the configured model", "The α–β model at "
                    + "W = 8…256 (weak scaling, compute measured at W = 1): step time (solid) and its "
                    + "communication (dashed), for the flat and the two-level all-to-all.", "lines", "workers", true,
                    "ms", false);
            for (String kind : List.of("flat", "twoLevel")) {
                List<double[]> total = new ArrayList<>();
                List<double[]> comm = new ArrayList<>();
                for (JsonNode p : predictions.path(kind)) {
                    total.add(new double[] {p.path("workers").asInt(), p.path("stepSeconds").asDouble() * 1e3});
                    comm.add(new double[] {p.path("workers").asInt(),
                        (p.path("allToAllSeconds").asDouble() + p.path("allReduceSeconds").asDouble()) * 1e3});
                }
                String name = kind.equals("flat") ? "flat" : "two-level";
                series(step, name + " step", "line", total);
                series(step, name + " communication", "dashed", comm);
            }
            charts.add(step);
        }
        for (int i = 0; i < charts.size(); i++) {
            charts.get(i).put("id", "chart-" + i);
        }
        return charts;
    }

    private static Map<String, Object> chart(String title, String note, String kind, String xName, boolean xLog,
                                             String yName, boolean yLog) {
        Map<String, Object> c = new LinkedHashMap<>();
        c.put("title", title);
        c.put("note", note);
        c.put("kind", kind);
        c.put("xName", xName);
        c.put("xLog", xLog);
        c.put("yName", yName);
        c.put("yLog", yLog);
        c.put("series", new ArrayList<Map<String, Object>>());
        return c;
    }

    @SuppressWarnings("unchecked")
    private static void series(Map<String, Object> chart, String name, String style, List<double[]> data) {
        if (data.isEmpty()) {
            return;
        }
        Map<String, Object> s = new LinkedHashMap<>();
        s.put("name", name);
        s.put("style", style);
        s.put("data", data);
        ((List<Map<String, Object>>) chart.get("series")).add(s);
    }

    private static String read(String classpathName) {
        try (InputStream in = ClusterReport.class.getClassLoader().getResourceAsStream(classpathName)) {
            if (in == null) {
                throw new IllegalStateException(classpathName + " is not on the class path (a broken build)");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
