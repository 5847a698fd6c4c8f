package io.roundhouse.worker.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The Self-Tuning Network's schedules of several runs as one static SVG for documents
 * ({@link #schedules}; an image in Markdown runs no script, so it cannot be an ECharts page). A
 * run's own schedules are in its report page (RunReport).
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

    private static String px(double x, double x0, double x1) {
        return String.format(Locale.ROOT, "%.1f", PAD + (x - x0) / (x1 - x0) * (W - PAD - 8));
    }

    private static String py(double y, double y0, double y1) {
        return String.format(Locale.ROOT, "%.1f", 8 + (y1 - y) / (y1 - y0) * (H - PAD - 8));
    }
}
