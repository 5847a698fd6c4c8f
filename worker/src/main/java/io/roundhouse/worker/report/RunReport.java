package io.roundhouse.worker.report;

import com.fasterxml.jackson.databind.JsonNode;
import io.roundhouse.worker.UserException;
import io.roundhouse.worker.train.MetricsWriter;
import io.roundhouse.worker.train.RunFiles;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Set;

/**
 * The run report: one self-contained HTML file, readable offline, with the runs' key config and
 * summary, and charts of their records ({@link ReportCharts}: loss and validation, accuracy or bits
 * per byte, tokens/s, learning rate, gradient norm, dropped copies, expert load per MoE layer as
 * heatmaps, time per phase, the Self-Tuning Network's hyperparameters). Several runs overlay, one
 * series per run, labelled with the run folder's name.
 *
 * <p>The charts are drawn in the browser by Apache ECharts, whose {@code echarts.min.js} (about
 * 1 MB, Apache-2.0, with its notice) is read from the {@code org.webjars.npm:echarts} jar and
 * inlined, so the page needs no network. The page records every script error and
 * {@code console.error} into {@code #console-errors}, and after drawing writes on each chart's
 * element the points ECharts laid out per series ({@code data-drawn}) beside the points it was given
 * ({@code data-given}): what {@code RunReportTest} checks in a headless Chromium.
 */
public final class RunReport {
    /** The file {@link #writeFor} writes in the run folder. */
    public static final String FILE = "report.html";

    private static final String WEBJAR = "META-INF/resources/webjars/echarts/";

    private RunReport() {
    }

    /**
     * Writes the report of the run in {@code runDir} to {@code runDir/report.html} (atomically) and
     * returns its path: the one call for the end of a run. A run that traced steps
     * ({@code train.traceSteps}) also gets their timeline, {@code trace.json} ({@link TraceFile}).
     *
     * @throws UserException when {@code runDir} is not a run folder, a record is damaged, or the
     *                       file cannot be written
     */
    public static Path writeFor(Path runDir) {
        Path page = write(List.of(runDir), runDir.resolve(FILE));
        TraceFile.writeFor(runDir);  // the traced steps' timeline beside it, when the run traced any
        return page;
    }

    /**
     * Writes the report of the runs in {@code runDirs} (their series overlaid, in this order) to
     * {@code outFile} (atomically) and returns it.
     *
     * @throws UserException when a folder is not a run folder, a record is damaged, or the file
     *                       cannot be written
     */
    public static Path write(List<Path> runDirs, Path outFile) {
        if (runDirs.isEmpty()) {
            throw new IllegalArgumentException("no run folders");
        }
        List<RunRecords> runs = RunRecords.read(runDirs);
        RunFiles.writeAtomically(outFile, html(runs));
        return outFile;
    }

    /** The page for {@code runs}. */
    static String html(List<RunRecords> runs) {
        List<Map<String, Object>> charts = ReportCharts.of(runs);
        StringBuilder names = new StringBuilder();
        for (RunRecords r : runs) {
            names.append(names.length() == 0 ? "" : ", ").append(r.name);
        }
        StringBuilder h = new StringBuilder(1 << 21);
        h.append("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Roundhouse report: ")
                .append(escape(names.toString())).append("</title>\n<style>\n").append(resource("report.css"))
                .append("</style>\n<script>\n").append(resource("report-errors.js")).append("</script>\n</head>\n<body>\n");
        h.append("<h1>Roundhouse run report</h1>\n<p class=\"meta\">").append(escape(names.toString()))
                .append(" · written ").append(ZonedDateTime.now().format(DateTimeFormatter.ISO_OFFSET_DATE_TIME))
                .append("</p>\n<pre id=\"console-errors\" hidden></pre>\n");
        header(h, runs);
        String section = "";
        for (Map<String, Object> c : charts) {
            if (!c.get("section").equals(section)) {
                section = (String) c.get("section");
                h.append("<h2>").append(escape(section)).append("</h2>\n");
            }
            h.append("<h3>").append(escape((String) c.get("title"))).append("</h3>\n<p class=\"note\">")
                    .append(escape((String) c.get("note"))).append("</p>\n<div class=\"chart").append(
                            c.get("kind").equals("heatmap") ? " heatmap" : "").append("\" id=\"").append(c.get("id"))
                    .append("\"></div>\n");
        }
        for (RunRecords r : runs) {
            if (r.hyper.isEmpty() && !r.config.getOrDefault("stn.tune", "").isEmpty()) {
                h.append("<p>").append(escape(r.name)).append(": no hyper steps were taken (the run ended within "
                        + "stn.warmupSteps).</p>\n");
            }
        }
        Map<String, Object> data = new LinkedHashMap<>();
        data.put("runs", runs.stream().map(r -> r.name).toList());
        data.put("charts", charts);
        // In a script element only "</" can end it early: escaped as "<\/", which JSON reads back as "</".
        h.append("<script type=\"application/json\" id=\"report-data\">")
                .append(MetricsWriter.toJson(data).replace("</", "<\\/")).append("</script>\n");
        h.append("<script>\n").append(echarts()).append("\n</script>\n<script>\n").append(resource("chart-record.js"))
                .append(resource("report.js"))
                .append("</script>\n</body>\n</html>\n");
        return h.toString();
    }

    /** A table with a column per run: the key config, then summary.json's figures. */
    private static void header(StringBuilder h, List<RunRecords> runs) {
        String[] keys = {"model.kind", "model.dim", "model.blocks", "model.heads", "model.experts", "model.topK",
            "model.expertHidden", "model.router", "model.sharedExperts", "model.moeEvery", "model.capacityFactor",
            "data.seqLen", "train.batchSize", "train.maxSteps", "train.epochs", "train.lr", "workers",
            "comms.transport", "backend", "stn.tune"};
        // the language model's own keys, left out when every run is a classifier
        Set<String> lmOnly = Set.of("model.heads", "model.moeEvery", "data.seqLen");
        boolean anyLm = runs.stream().anyMatch(r -> "lm".equals(r.config.get("model.kind")));
        Set<String> summaryKeys = new LinkedHashSet<>();
        for (RunRecords r : runs) {
            if (r.summary != null) {
                r.summary.fieldNames().forEachRemaining(summaryKeys::add);
            }
        }
        h.append("<table class=\"runs\">\n<tr><th></th>");
        for (RunRecords r : runs) {
            h.append("<th>").append(escape(r.name)).append("</th>");
        }
        h.append("</tr>\n");
        for (String k : keys) {
            if (runs.stream().noneMatch(r -> r.config.containsKey(k)) || (!anyLm && lmOnly.contains(k))) {
                continue;
            }
            h.append("<tr><td>").append(k).append("</td>");
            for (RunRecords r : runs) {
                h.append("<td>").append(escape(r.config.getOrDefault(k, ""))).append("</td>");
            }
            h.append("</tr>\n");
        }
        if (runs.stream().anyMatch(r -> r.placement != null)) {
            h.append("<tr><td>experts by worker</td>");
            for (RunRecords r : runs) {
                h.append("<td>").append(r.placement == null ? "" : escape(placement(r.placement))).append("</td>");
            }
            h.append("</tr>\n");
        }
        if (runs.stream().anyMatch(r -> r.earlyExit.isEmpty())) {  // not for early-exit runs alone: they train no steps
            h.append("<tr><td>steps recorded</td>");
            for (RunRecords r : runs) {
                String state = r.summary == null ? " (no summary.json: running, or stopped by a failure)" : "";
                String partial = r.partialLines > 0 ? "; its last metrics line was cut short and left out" : "";
                h.append("<td>").append(r.train.size()).append(escape(state + partial)).append("</td>");
            }
            h.append("</tr>\n");
        }
        for (String k : summaryKeys) {
            h.append("<tr class=\"summary\"><td>").append(escape(k)).append("</td>");
            for (RunRecords r : runs) {
                JsonNode v = r.summary == null ? null : r.summary.get(k);
                h.append("<td>").append(v == null ? "" : escape(format(v))).append("</td>");
            }
            h.append("</tr>\n");
        }
        h.append("</table>\n");
        if (runs.stream().noneMatch(r -> r.config.containsKey("model.kind"))) {
            h.append("<p>No config.conf in the run folder: the config is not shown.</p>\n");
        }
    }

    /** {@code expertsByWorker} as {@code 0: 0–3 · 1: 4–7}, a worker's experts as a range where they are one. */
    static String placement(JsonNode placement) {
        StringBuilder sb = new StringBuilder();
        JsonNode byWorker = placement.path("expertsByWorker");
        for (int w = 0; w < byWorker.size(); w++) {
            JsonNode e = byWorker.path(w);
            int first = e.path(0).asInt();
            int last = e.path(e.size() - 1).asInt();
            sb.append(w == 0 ? "" : " · ").append(w).append(": ");
            if (e.size() > 1 && last - first == e.size() - 1) {
                sb.append(first).append('–').append(last);
            } else {
                for (int i = 0; i < e.size(); i++) {
                    sb.append(i == 0 ? "" : ",").append(e.path(i).asInt());
                }
            }
        }
        return sb.toString();
    }

    private static String format(JsonNode v) {
        if (v.isIntegralNumber()) {
            return String.format(Locale.ROOT, "%,d", v.asLong());
        }
        if (v.isNumber()) {
            return String.format(Locale.ROOT, "%.5g", v.asDouble());
        }
        if (v.isObject()) {
            StringBuilder sb = new StringBuilder();
            v.fields().forEachRemaining(e -> sb.append(sb.length() == 0 ? "" : ", ").append(e.getKey()).append(' ')
                    .append(format(e.getValue())));
            return sb.toString();
        }
        return v.asText();
    }

    /** echarts.min.js from the webjar, after its NOTICE and licenses. */
    public static String echarts() {
        Properties pom = new Properties();
        try (InputStream in = stream("META-INF/maven/org.webjars.npm/echarts/pom.properties")) {
            pom.load(in);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        String base = WEBJAR + pom.getProperty("version") + "/";
        String notice = read(base + "NOTICE") + "\n" + read(base + "LICENSE") + "\n" + read(base + "licenses/LICENSE-d3");
        return "/*! Apache ECharts " + pom.getProperty("version") + " (dist/echarts.min.js, from the "
                + "org.webjars.npm:echarts jar).\n" + notice.replace("*/", "* /") + "\n*/\n" + read(base + "dist/echarts.min.js");
    }

    private static String resource(String name) {
        return read("io/roundhouse/worker/report/" + name);
    }

    private static String read(String classpathName) {
        try (InputStream in = stream(classpathName)) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A resource that ships in the jars: its absence is a broken build, not the user's error. */
    private static InputStream stream(String classpathName) {
        InputStream in = RunReport.class.getClassLoader().getResourceAsStream(classpathName);
        if (in == null) {
            throw new IllegalStateException(classpathName + " is not on the class path (the build left out the "
                    + "org.webjars.npm:echarts jar or the report's resources)");
        }
        return in;
    }

    public static String escape(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
    }
}
