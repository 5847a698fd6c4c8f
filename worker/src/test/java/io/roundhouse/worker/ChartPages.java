package io.roundhouse.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.awt.image.BufferedImage;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.imageio.ImageIO;

/**
 * A page of charts (a run report, bench cluster's page) opened in headless Chromium: its scripts
 * ran without an error, every chart says it laid out every point it was given inside its plot,
 * and the screenshot shows each chart painted. Needs each chart as an {@code <h3>} title, a note
 * and a {@code div} whose script sets {@code data-given}, {@code data-drawn} and {@code data-rect},
 * and the body's {@code data-charts} and {@code data-height}.
 */
public final class ChartPages {
    private static final Pattern CHART = Pattern.compile("<h3>([^<]*)</h3>\\s*<p class=\"note\">[^<]*</p>\\s*<div ([^>]*)>");
    private static final Pattern ATTRIBUTE = Pattern.compile("([\\w-]+)=\"([^\"]*)\"");

    private ChartPages() {
    }

    /** A chart's title and what its element says it was given and drew, per series. */
    public record Chart(String title, Map<String, Integer> given, Map<String, Integer> drawn, int[] rect) {
        public int given(String series) {
            Integer n = given.get(series);
            if (n == null) {
                throw new AssertionError(title + " has no series " + series + ": " + given.keySet());
            }
            return n;
        }
    }

    /**
     * Opens {@code page} in headless Chromium twice: the DOM after the scripts ran (the charts'
     * counts, the errors recorded), then a screenshot of the whole page ({@code name}.png in the test
     * output), and checks what every page must show.
     */
    public static Map<String, Chart> render(Path page, Path out, String name) throws Exception {
        String chromium = chromium();
        String dom = run(out, chromium, "--window-size=1200,900", "--dump-dom", page.toUri().toString());
        Matcher errors = Pattern.compile("<pre id=\"console-errors\"[^>]*data-count=\"(\\d+)\"[^>]*>([^<]*)</pre>").matcher(dom);
        assertTrue(errors.find(), "the page's error hook ran");
        assertEquals("0", errors.group(1), "errors in the page: " + unescape(errors.group(2)));
        Map<String, Chart> charts = new LinkedHashMap<>();
        Matcher m = CHART.matcher(dom);
        while (m.find()) {
            Map<String, String> attributes = new HashMap<>();
            Matcher a = ATTRIBUTE.matcher(m.group(2));
            while (a.find()) {
                attributes.put(a.group(1), unescape(a.group(2)));
            }
            String title = unescape(m.group(1));
            assertTrue(attributes.containsKey("data-drawn"), title + ": not drawn");
            Chart chart = new Chart(title, counts(attributes.get("data-given")), counts(attributes.get("data-drawn")),
                    java.util.Arrays.stream(attributes.get("data-rect").split(",")).mapToInt(Integer::parseInt).toArray());
            assertFalse(chart.given.isEmpty(), title);
            assertEquals(chart.given, chart.drawn, title + ": points given and laid out inside the plot, per series");
            chart.given.forEach((s, n) -> assertTrue(n > 0, title + " " + s));
            assertTrue(charts.put(title, chart) == null, "two charts titled " + title);
        }
        Matcher count = Pattern.compile("<body[^>]*data-charts=\"(\\d+)\"").matcher(dom);
        assertTrue(count.find(), "the page's script finished");
        assertEquals(Integer.parseInt(count.group(1)), charts.size(), "every chart found in the DOM");
        Matcher height = Pattern.compile("<body[^>]*data-height=\"(\\d+)\"").matcher(dom);
        assertTrue(height.find());
        Path png = out.resolve(name + ".png");
        run(out, chromium, "--window-size=1200," + height.group(1), "--screenshot=" + png, "--hide-scrollbars",
                page.toUri().toString());
        BufferedImage image = ImageIO.read(png.toFile());
        for (Chart chart : charts.values()) {
            int[] r = chart.rect;
            int painted = 0;
            for (int y = r[1]; y < Math.min(image.getHeight(), r[1] + r[3]); y++) {
                for (int x = r[0]; x < Math.min(image.getWidth(), r[0] + r[2]); x++) {
                    painted += (image.getRGB(x, y) & 0xffffff) != 0xffffff ? 1 : 0;
                }
            }
            assertTrue(painted > r[2] * r[3] / 100, chart.title + ": " + painted + " of " + r[2] * r[3]
                    + " pixels painted in the screenshot " + png);
        }
        return charts;
    }

    private static Map<String, Integer> counts(String json) throws Exception {
        Map<String, Integer> m = new LinkedHashMap<>();
        new ObjectMapper().readTree(json).fields().forEachRemaining(e -> m.put(e.getKey(), e.getValue().asInt()));
        return m;
    }

    private static String unescape(String s) {
        return s.replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
    }


    /** Chromium's command on this machine, or null. */
    public static String chromium() {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            for (String name : List.of("chromium", "chromium-browser")) {
                if (Files.isExecutable(Path.of(dir, name))) {
                    return Path.of(dir, name).toString();
                }
            }
        }
        return null;
    }

    /** Runs headless Chromium with {@code args}; returns its standard output. */
    private static String run(Path out, String chromium, String... args) throws Exception {
        List<String> command = new ArrayList<>(List.of(chromium, "--headless", "--no-sandbox", "--disable-gpu",
                "--no-first-run", "--user-data-dir=" + out.resolve("chromium-profile")));
        command.addAll(List.of(args));
        Process p = new ProcessBuilder(command).redirectError(out.resolve("chromium.log").toFile()).start();
        byte[] stdout = p.getInputStream().readAllBytes();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "chromium did not finish");
        assertEquals(0, p.exitValue(), "chromium failed: " + Files.readString(out.resolve("chromium.log")));
        return new String(stdout, StandardCharsets.UTF_8);
    }
}
