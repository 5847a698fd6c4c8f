package io.roundhouse.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.roundhouse.worker.report.RunReport;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The run report drawn by a real browser: reports of real tiny runs (a classifier with a
 * Self-Tuning Network, a two-worker classifier with a capacity limit, a language model) are opened
 * in headless Chromium; the page must log no error, every chart must have laid out every point it
 * was given, and the points given must be the runs' records (counted here from metrics.jsonl).
 * The screenshots stay in {@code worker/target/run-report/}. Skips where Chromium is not installed.
 */
@Timeout(240)
class RunReportTest {
    /** Test output: the runs, the reports and their screenshots, kept for a person to look at. */
    private static final Path OUT = Path.of("target", "run-report").toAbsolutePath();
    private static final ObjectMapper JSON = new ObjectMapper();

    static Path stn;
    static Path capped;
    static Path lm;

    @BeforeAll
    static void runs() throws Exception {
        Assumptions.assumeTrue(ChartPages.chromium() != null, "chromium is not installed (Debian: apt-get install chromium); "
                + "the run report is not checked in a browser");
        if (Files.exists(OUT)) {
            try (var files = Files.walk(OUT)) {
                files.sorted(java.util.Comparator.reverseOrder()).map(Path::toFile).forEach(File::delete);
            }
        }
        Path data = IdxFixtures.write(OUT.resolve("data"), 600, 90, 5);
        Map<String, String> c = new HashMap<>();
        c.put("data.dir", data.toString());
        c.put("data.validationExamples", "90");
        c.put("model.dim", "16");
        c.put("model.experts", "4");
        c.put("model.expertHidden", "12");
        c.put("train.maxSteps", "30");  // an epoch is 17 steps of 30: validation after 17 and 30
        c.put("train.batchSize", "30");
        c.put("train.warmupSteps", "3");
        c.put("train.evalBatchSize", "30");
        c.put("log.everySteps", "10");
        c.put("backend", "cpu");
        Map<String, String> s = new HashMap<>(c);
        s.put("model.capacityFactor", "0");
        s.put("model.routerJitter", "0.05");
        s.put("stn.tune", "dropout.block,router.jitter,loss.loadBalance");
        s.put("stn.warmupSteps", "6");
        s.put("stn.trainSteps", "3");
        s.put("stn.validSteps", "1");
        s.put("output.dir", OUT.resolve("stn").toString());
        stn = TrainerGroups.train(s, 1, OUT.resolve("aeron"), "report-stn").get(0).runDir();
        Map<String, String> w = new HashMap<>(c);
        w.put("model.capacityFactor", "0.6");  // tight: copies are dropped
        w.put("output.dir", OUT.resolve("capped").toString());
        capped = TrainerGroups.train(w, 2, OUT.resolve("aeron"), "report-w2").get(0).runDir();
        Path text = LmFixtures.corpus(Files.createDirectories(OUT.resolve("text")).resolve("text.txt"), 3, 8_000, 8);
        Map<String, String> l = LmFixtures.config(text, OUT.resolve("lm"), 12);
        l.put("checkpoint.everySteps", "0");
        lm = TrainerGroups.train(l, 1, OUT.resolve("aeron"), "report-lm").get(0).runDir();
    }

    @Test
    void oneRunsReportDrawsEveryRecordWithoutErrors() throws Exception {
        Path page = RunReport.writeFor(stn);
        assertEquals(stn.resolve("report.html"), page);
        Map<String, ChartPages.Chart> charts = ChartPages.render(page, OUT, "stn");
        int steps = records(stn, "train").size();
        assertEquals(30, steps);
        assertEquals(steps, charts.get("loss").given("loss"));
        assertEquals(steps, charts.get("loss").given("cross-entropy"));
        assertEquals(2, charts.get("loss").given("validation cross-entropy"), "validation at steps 17 and 30");
        assertEquals(1, charts.get("loss").given("test cross-entropy"));
        assertEquals(steps, charts.get("accuracy").given("accuracy"));
        assertEquals(steps, charts.get("tokens per second").given("tokens/s"));
        assertEquals(steps * 4, charts.get("MoE layer 0: expert load").given("load"), "a cell per step and expert");
        assertFalse(charts.containsKey("bits per byte"), "no language model in this report");
        int rounds = records(stn, "hyper").size();
        assertEquals(8, rounds, "hyper rounds after steps 6, 9, …, 27 and 30");
        for (String name : List.of("dropout.block", "router.jitter", "loss.loadBalance")) {
            assertEquals(rounds, charts.get(name).given("λ"), name);
            assertEquals(rounds, charts.get(name).given("band"), name);
        }
        assertEquals(rounds, charts.get("validation loss in the hyper steps").given("validation loss"));
        java.util.Set<String> timed = new java.util.HashSet<>();
        for (JsonNode r : records(stn, "train")) {
            r.get("phaseMs").fields().forEachRemaining(e -> {
                if (e.getValue().asDouble() > 0) {
                    timed.add(e.getKey());
                }
            });
        }
        java.util.Set<String> plotted = new java.util.HashSet<>(timed);
        plotted.add("step");
        assertEquals(plotted, charts.get("time per phase").given().keySet(), "a series per timed phase, and the step");
        for (String p : plotted) {
            assertEquals(steps, charts.get("time per phase").given(p), p);
        }
    }

    @Test
    void severalRunsOverlayASeriesPerRun() throws Exception {
        Path page = RunReport.write(List.of(stn, capped, lm), OUT.resolve("compare.html"));
        assertTrue(Files.readString(page).contains("<tr><td>experts by worker</td><td>0: 0–3</td><td>0: 0–1 · 1: 2–3</td>"),
                "the header has each run's placement");
        Map<String, ChartPages.Chart> charts = ChartPages.render(page, OUT, "compare");
        // The runs may share a folder name (started in one second): labelled by their parent folders too.
        String a = label(stn, capped, lm);
        String b = label(capped, stn, lm);
        String c = label(lm, stn, capped);
        ChartPages.Chart loss = charts.get("loss");
        assertEquals(30, loss.given(a + " loss"));
        assertEquals(30, loss.given(b + " loss"));
        assertEquals(12, loss.given(c + " loss"));
        assertEquals(records(lm, "eval").stream().filter(r -> r.get("split").asText().equals("validation")).count(),
                charts.get("bits per byte").given(c + " validation bits/byte"));
        assertFalse(charts.get("accuracy").given().containsKey(c + " accuracy"), "the LM has no accuracy");
        double dropped = records(capped, "train").stream().mapToDouble(r -> r.get("droppedCopies").asDouble()).sum();
        assertTrue(dropped > 0, "capacity factor 0.6 drops copies");
        assertEquals(30, charts.get("dropped copies").given(b + " dropped"));
        assertEquals(2, charts.get(b + " · compute per worker").given().size(), "a line per worker");
        for (String run : List.of(a, b)) {
            assertEquals(30 * 4, charts.get(run + " · MoE layer 0: expert load").given("load"));
        }
        assertEquals(12 * 4, charts.get(c + " · MoE layer 1: expert load").given("load"), "the LM's second block");
        assertEquals(Map.of(a + " λ", 8, a + " band", 8), charts.get("dropout.block").given());
    }

    @Test
    void theStnReportIsTheRunReport() throws Exception {
        Path page = io.roundhouse.worker.report.RunReport.writeFor(stn);
        assertEquals(stn.resolve("report.html"), page);
        String html = Files.readString(page);
        for (String name : List.of("dropout.block", "router.jitter", "loss.loadBalance")) {
            assertTrue(html.contains("<h3>" + name + "</h3>"), name);
        }
    }

    private static String label(Path run, Path... others) {
        boolean shared = java.util.Arrays.stream(others).anyMatch(o -> o.getFileName().equals(run.getFileName()));
        return shared ? run.getParent().getFileName() + "/" + run.getFileName() : run.getFileName().toString();
    }

    private static List<JsonNode> records(Path run, String type) {
        try {
            return TrainerGroups.records(run, type);
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }
}
