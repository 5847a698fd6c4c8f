package io.roundhouse.worker.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The run's hyperparameter report: {@code stn-report.html} in the run directory, one SVG chart
 * per tuned hyperparameter (λ over the weight steps, with the band {@code T(u ± σ)} the weight steps
 * sample from) and one of the validation loss the hyper steps saw, read back from the run's
 * {@code hyper} records in {@code metrics.jsonl}.
 */
public final class StnReport {
    private static final int W = 640;
    private static final int H = 180;
    private static final int PAD = 44;

    private StnReport() {
    }

    /** The run's {@code hyper} records, in order. */
    static List<JsonNode> records(Path runDir) throws IOException {
        ObjectMapper json = new ObjectMapper();
        List<JsonNode> hyper = new ArrayList<>();
        try (BufferedReader r = Files.newBufferedReader(runDir.resolve("metrics.jsonl"), StandardCharsets.UTF_8)) {
            for (String line = r.readLine(); line != null; line = r.readLine()) {
                if (line.contains("\"hyper\"")) {
                    JsonNode n = json.readTree(line);
                    if ("hyper".equals(n.path("type").asText())) {
                        hyper.add(n);
                    }
                }
            }
        }
        return hyper;
    }

    /**
     * One SVG with a panel per hyperparameter and a line per run ({@code labels} name them): the
     * schedules several runs learnt, side by side.
     */
    public static String schedules(List<Path> runDirs, List<String> labels) throws IOException {
        String[] colours = {"#08519c", "#d94801", "#238b45", "#6a51a3", "#a50f15", "#525252"};
        List<List<JsonNode>> all = new ArrayList<>();
        for (Path d : runDirs) {
            all.add(records(d));
        }
        List<String> names = new ArrayList<>();
        for (List<JsonNode> recs : all) {
            if (!recs.isEmpty()) {
                recs.get(0).path("lambda").fieldNames().forEachRemaining(n -> {
                    if (!names.contains(n)) {
                        names.add(n);
                    }
                });
            }
        }
        int panel = H + 24;
        StringBuilder svg = new StringBuilder(String.format(Locale.ROOT, "<svg xmlns=\"http://www.w3.org/2000/svg\" "
                + "width=\"%d\" height=\"%d\" font-family=\"sans-serif\">%n<rect width=\"100%%\" height=\"100%%\" "
                + "fill=\"white\"/>%n", W, panel * names.size() + 20));
        for (int k = 0; k < labels.size(); k++) {
            svg.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"14\" font-size=\"12\" fill=\"%s\">%s</text>%n",
                    PAD + k * 110, colours[k % colours.length], labels.get(k)));
        }
        for (int p = 0; p < names.size(); p++) {
            String name = names.get(p);
            double x0 = Double.POSITIVE_INFINITY;
            double x1 = Double.NEGATIVE_INFINITY;
            double y0 = Double.POSITIVE_INFINITY;
            double y1 = Double.NEGATIVE_INFINITY;
            for (List<JsonNode> recs : all) {
                for (JsonNode n : recs) {
                    x0 = Math.min(x0, n.path("step").asDouble());
                    x1 = Math.max(x1, n.path("step").asDouble());
                    y0 = Math.min(y0, n.path("lambda").path(name).asDouble());
                    y1 = Math.max(y1, n.path("lambda").path(name).asDouble());
                }
            }
            if (y1 - y0 < 1e-12) {
                y0 -= 0.5 * Math.abs(y0) + 1e-6;
                y1 += 0.5 * Math.abs(y1) + 1e-6;
            }
            x1 = Math.max(x1, x0 + 1);
            svg.append(String.format(Locale.ROOT, "<g transform=\"translate(0,%d)\">%n", 20 + p * panel));
            svg.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"14\" font-size=\"13\">%s</text>%n", PAD, name));
            svg.append(String.format(Locale.ROOT, "<g transform=\"translate(0,16)\">%n<rect x=\"%d\" y=\"8\" "
                    + "width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#999\"/>%n", PAD, W - PAD - 8, H - PAD - 8));
            for (int k = 0; k < all.size(); k++) {
                StringBuilder line = new StringBuilder();
                for (JsonNode n : all.get(k)) {
                    line.append(px(n.path("step").asDouble(), x0, x1)).append(',')
                            .append(py(n.path("lambda").path(name).asDouble(), y0, y1)).append(' ');
                }
                svg.append("<polyline fill=\"none\" stroke=\"").append(colours[k % colours.length])
                        .append("\" stroke-width=\"1.5\" points=\"").append(line).append("\"/>\n");
            }
            svg.append(String.format(Locale.ROOT, "<text x=\"2\" y=\"16\" font-size=\"11\">%.4g</text>%n", y1));
            svg.append(String.format(Locale.ROOT, "<text x=\"2\" y=\"%d\" font-size=\"11\">%.4g</text>%n", H - PAD, y0));
            svg.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" font-size=\"11\">step %.0f</text>%n", PAD,
                    H - PAD + 16, x0));
            svg.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"end\">"
                    + "step %.0f</text>%n</g>%n</g>%n", W - 8, H - PAD + 16, x1));
        }
        return svg.append("</svg>\n").toString();
    }

    /** Writes the report of {@code runDir} (atomically) and returns its path. */
    public static Path write(Path runDir) throws IOException {
        List<JsonNode> hyper = records(runDir);
        StringBuilder html = new StringBuilder("<!doctype html><meta charset=\"utf-8\"><title>Self-Tuning Network: "
                + "hyperparameters</title>\n<body style=\"font-family:sans-serif\">\n<h1>Hyperparameters tuned online "
                + "(Self-Tuning Network)</h1>\n<p>" + runDir.getFileName() + ": " + hyper.size()
                + " hyper-step rounds. Line: λ after each round; band: T(u − σ) … T(u + σ), the spread the weight "
                + "steps sample from.</p>\n");
        if (hyper.isEmpty()) {
            html.append("<p>No hyper steps were taken (the run ended within stn.warmupSteps).</p>\n");
        } else {
            Map<String, double[][]> series = new LinkedHashMap<>();
            hyper.get(0).path("lambda").fieldNames().forEachRemaining(k -> series.put(k, new double[4][hyper.size()]));
            double[][] loss = new double[2][hyper.size()];
            for (int i = 0; i < hyper.size(); i++) {
                JsonNode n = hyper.get(i);
                double step = n.path("step").asDouble();
                for (Map.Entry<String, double[][]> e : series.entrySet()) {
                    double[][] s = e.getValue();
                    s[0][i] = step;
                    s[1][i] = n.path("lambda").path(e.getKey()).asDouble();
                    s[2][i] = n.path("band").path(e.getKey()).path(0).asDouble();
                    s[3][i] = n.path("band").path(e.getKey()).path(1).asDouble();
                }
                loss[0][i] = step;
                loss[1][i] = n.path("validLoss").asDouble();
            }
            for (Map.Entry<String, double[][]> e : series.entrySet()) {
                double[][] s = e.getValue();
                html.append(chart(e.getKey(), s[0], s[1], s[2], s[3]));
            }
            html.append(chart("validation loss in the hyper steps", loss[0], loss[1], null, null));
        }
        html.append("</body>\n");
        Path out = runDir.resolve("stn-report.html");
        RunFiles.writeAtomically(out, html.toString());
        return out;
    }

    /** One line chart (with an optional band) as inline SVG, axes labelled with their ranges. */
    static String chart(String title, double[] x, double[] y, double[] lo, double[] hi) {
        double x0 = min(x);
        double x1 = Math.max(max(x), x0 + 1);
        double y0 = Math.min(min(y), lo == null ? Double.POSITIVE_INFINITY : min(lo));
        double y1 = Math.max(max(y), hi == null ? Double.NEGATIVE_INFINITY : max(hi));
        if (y1 - y0 < 1e-12) {
            y0 -= 0.5 * Math.abs(y0) + 1e-6;
            y1 += 0.5 * Math.abs(y1) + 1e-6;
        }
        StringBuilder svg = new StringBuilder();
        svg.append("<h3>").append(title).append("</h3>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"")
                .append(W).append("\" height=\"").append(H).append("\">\n");
        svg.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
                + "stroke=\"#999\"/>%n", PAD, 8, W - PAD - 8, H - PAD - 8));
        if (lo != null) {
            StringBuilder band = new StringBuilder();
            for (int i = 0; i < x.length; i++) {
                band.append(px(x[i], x0, x1)).append(',').append(py(hi[i], y0, y1)).append(' ');
            }
            for (int i = x.length - 1; i >= 0; i--) {
                band.append(px(x[i], x0, x1)).append(',').append(py(lo[i], y0, y1)).append(' ');
            }
            svg.append("<polygon fill=\"#9ecae1\" fill-opacity=\"0.5\" points=\"").append(band).append("\"/>\n");
        }
        StringBuilder line = new StringBuilder();
        for (int i = 0; i < x.length; i++) {
            line.append(px(x[i], x0, x1)).append(',').append(py(y[i], y0, y1)).append(' ');
        }
        svg.append("<polyline fill=\"none\" stroke=\"#08519c\" stroke-width=\"1.5\" points=\"").append(line)
                .append("\"/>\n");
        svg.append(String.format(Locale.ROOT, "<text x=\"2\" y=\"16\" font-size=\"11\">%.4g</text>%n", y1));
        svg.append(String.format(Locale.ROOT, "<text x=\"2\" y=\"%d\" font-size=\"11\">%.4g</text>%n", H - PAD, y0));
        svg.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" font-size=\"11\">step %.0f</text>%n", PAD,
                H - PAD + 16, x0));
        svg.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"end\">step "
                + "%.0f</text>%n", W - 8, H - PAD + 16, x1));
        return svg.append("</svg>\n").toString();
    }

    private static String px(double x, double x0, double x1) {
        return String.format(Locale.ROOT, "%.1f", PAD + (x - x0) / (x1 - x0) * (W - PAD - 8));
    }

    private static String py(double y, double y0, double y1) {
        return String.format(Locale.ROOT, "%.1f", 8 + (y1 - y) / (y1 - y0) * (H - PAD - 8));
    }

    private static double min(double[] v) {
        double m = Double.POSITIVE_INFINITY;
        for (double d : v) {
            m = Math.min(m, d);
        }
        return m;
    }

    private static double max(double[] v) {
        double m = Double.NEGATIVE_INFINITY;
        for (double d : v) {
            m = Math.max(m, d);
        }
        return m;
    }
}
