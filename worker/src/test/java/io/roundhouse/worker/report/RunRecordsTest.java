package io.roundhouse.worker.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.roundhouse.worker.UserException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Reading run folders back for the report: what is refused (with one line naming the file and the
 * fix), what is tolerated (a last line still being written), how runs are labelled, and how a long
 * run is thinned for the page. The page in a browser: {@code RunReportTest}.
 */
class RunRecordsTest {
    @TempDir
    Path tmp;

    private static String train(int step, double loss) {
        return String.format(Locale.ROOT, "{\"type\":\"train\",\"step\":%d,\"loss\":%s,\"crossEntropy\":%s,"
                + "\"expertLoad\":[[3,1]],\"droppedCopies\":0,\"tokensPerSecond\":100.0}", step, loss, loss);
    }

    private Path run(String name, String metrics) throws Exception {
        Path dir = Files.createDirectories(tmp.resolve(name));
        Files.writeString(dir.resolve("metrics.jsonl"), metrics);
        return dir;
    }

    private static UserException refused(Path dir) {
        UserException e = assertThrows(UserException.class, () -> RunRecords.read(List.of(dir)));
        assertEquals(UserException.USAGE, e.exitCode());
        assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
        return e;
    }

    @Test
    void refusesWhatIsNotARunFolder() throws Exception {
        assertTrue(refused(tmp.resolve("nowhere")).getMessage().contains("nowhere: no such folder; give a run folder"));
        Path file = Files.writeString(tmp.resolve("file"), "x");
        assertTrue(refused(file).getMessage().contains("file: not a folder"));
        Path empty = Files.createDirectories(tmp.resolve("empty"));
        assertTrue(refused(empty).getMessage().contains("empty is not a run folder: it has no metrics.jsonl"));
    }

    @Test
    void refusesADamagedLineNamingIt() throws Exception {
        Path dir = run("damaged", train(1, 2.0) + "\n" + train(2, 1.9) + "\n{\"type\":\"train\",\"st\n" + train(4, 1.7) + "\n");
        String m = refused(dir).getMessage();
        assertTrue(m.contains("metrics.jsonl line 3 is not JSON") && m.contains("the file is damaged"), m);
        Path notRecord = run("array", "[1,2]\n");
        assertTrue(refused(notRecord).getMessage().contains("line 1 is not a record"));
        Path noStep = run("nostep", "{\"type\":\"train\",\"loss\":1}\n");
        assertTrue(refused(noStep).getMessage().contains("line 1 is a train record without a step"));
        Path cutAndEnded = run("cutended", train(1, 2.0) + "\n{\"type\":\"tra\n");
        assertTrue(refused(cutAndEnded).getMessage().contains("line 2 is not JSON"), "a finished line must be whole");
        Path summary = run("summary", train(1, 2.0) + "\n");
        Files.writeString(summary.resolve("summary.json"), "{\"steps\":");
        assertTrue(refused(summary).getMessage().contains("summary.json is not JSON"));
    }

    @Test
    void leavesOutALastLineStillBeingWritten() throws Exception {
        Path dir = run("writing", train(1, 2.0) + "\n" + train(2, 1.9) + "\n{\"type\":\"train\",\"step\":3,\"lo");
        RunRecords r = RunRecords.read(List.of(dir)).get(0);
        assertEquals(2, r.train.size());
        assertEquals(1, r.partialLines);
        assertEquals(null, r.summary, "no summary.json: the run has not finished");
        String html = RunReport.html(List.of(r));
        assertTrue(html.contains("its last metrics line was cut short and left out"), "the page says so");
    }

    @Test
    void labelsRunsThatShareAFolderNameByTheirParents() throws Exception {
        Path a = run("a/run-1", train(1, 2.0) + "\n");
        Path b = run("b/run-1", train(1, 2.0) + "\n");
        Path c = run("b/run-2", train(1, 2.0) + "\n");
        List<String> labels = RunRecords.read(List.of(a, b, c, c)).stream().map(r -> r.name).toList();
        assertEquals(List.of("a/run-1", "b/run-1", "run-2", "run-2 (4)"), labels);
    }

    @Test
    void thinsALongRunToMeansOfConsecutiveSteps() throws Exception {
        int steps = 5000;  // more than MAX_POINTS: 3 steps a point, 1667 points, the last of 2 steps
        StringBuilder metrics = new StringBuilder();
        for (int s = 1; s <= steps; s++) {
            metrics.append(train(s, s)).append('\n');
        }
        RunRecords r = RunRecords.read(List.of(run("long", metrics.toString()))).get(0);
        JsonNode loss = null;
        JsonNode load = null;
        for (var chart : new ObjectMapper().valueToTree(ReportCharts.of(List.of(r)))) {
            if (chart.get("title").asText().equals("loss")) {
                loss = chart.get("series").get(0);
            } else if (chart.get("title").asText().startsWith("MoE layer 0")) {
                load = chart;
            }
        }
        int per = (steps + ReportCharts.MAX_POINTS - 1) / ReportCharts.MAX_POINTS;
        assertEquals(3, per);
        JsonNode data = loss.get("data");
        assertEquals((steps + per - 1) / per, data.size());
        assertEquals(3, data.get(0).get(0).asInt(), "a point sits at the last of its steps");
        assertEquals(2.0, data.get(0).get(1).asDouble(), 1e-12, "the mean of losses 1, 2, 3");
        assertEquals(steps, data.get(data.size() - 1).get(0).asInt());
        assertEquals(4999.5, data.get(data.size() - 1).get(1).asDouble(), 1e-9, "the mean of the last two");
        int columns = load.get("columns").size();
        assertTrue(columns <= ReportCharts.MAX_COLUMNS, "columns " + columns);
        assertEquals(2 * columns, load.get("series").get(0).get("data").size(), "2 experts a column");
        assertEquals(1.5, load.get("series").get(0).get("data").get(0).get(2).asDouble(), 1e-12,
                "expert 0 took 3 of every 4 copies: 1.5 times an even share");
    }

    @Test
    void placementShowsEachWorkersExperts() throws Exception {
        ObjectMapper json = new ObjectMapper();
        assertEquals("0: 0–3 · 1: 4–7", RunReport.placement(json.readTree("{\"expertsByWorker\":[[0,1,2,3],[4,5,6,7]]}")));
        assertEquals("0: 0 · 1: 0 · 2: 1", RunReport.placement(json.readTree("{\"expertsByWorker\":[[0],[0],[1]]}")),
                "replicas");
        assertEquals("0: 0,2", RunReport.placement(json.readTree("{\"expertsByWorker\":[[0,2]]}")));
    }

    @Test
    void writesThePageAtomicallyWithTheLibraryInlined() throws Exception {
        Path dir = run("one", train(1, 2.0) + "\n" + train(2, 1.5) + "\n");
        Path page = RunReport.writeFor(dir);
        assertEquals(dir.resolve("report.html"), page);
        assertFalse(Files.exists(dir.resolve("report.html.tmp")));
        String html = Files.readString(page);
        assertTrue(html.contains("Licensed to the Apache Software Foundation") && html.contains("echarts"),
                "ECharts and its notice are in the page");
        assertFalse(html.contains("src=\"http") || html.contains("href=\"http"), "nothing is fetched at view time");
    }
}
