package io.roundhouse.driver;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code roundhouse report}: where the page goes, and the one-line refusals. The page itself is
 * checked in a browser by the worker's {@code RunReportTest}.
 */
class ReportCommandTest {
    @TempDir
    Path tmp;

    private final StringWriter out = new StringWriter();
    private final StringWriter err = new StringWriter();

    private int cli(String... args) {
        return RoundhouseCli.run(args, new PrintWriter(out, true), new PrintWriter(err, true));
    }

    private Path run(String name) throws Exception {
        Path dir = Files.createDirectories(tmp.resolve(name));
        Files.writeString(dir.resolve("metrics.jsonl"), "{\"type\":\"train\",\"step\":1,\"loss\":2.5,"
                + "\"crossEntropy\":2.4,\"expertLoad\":[[5,3]],\"droppedCopies\":0}\n"
                + "{\"type\":\"train\",\"step\":2,\"loss\":2.1,\"crossEntropy\":2.0,\"expertLoad\":[[4,4]],"
                + "\"droppedCopies\":0}\n");
        Files.writeString(dir.resolve("config.conf"), "# what the model is\nmodel.kind = classifier\n");
        return dir;
    }

    @Test
    void oneRunsReportGoesInItsFolder() throws Exception {
        Path a = run("runs/run-a");
        assertEquals(0, cli("report", a.toString()), err.toString());
        assertEquals("wrote " + a.resolve("report.html") + "\n", out.toString());
        String html = Files.readString(a.resolve("report.html"));
        assertTrue(html.contains("<th>run-a</th>") && html.contains("<td>classifier</td>"), "the run's header");
    }

    @Test
    void severalRunsGoBesideThemOrWhereTold() throws Exception {
        Path a = run("runs/run-a");
        Path b = run("runs/run-b");
        assertEquals(0, cli("report", a.toString(), b.toString()), err.toString());
        assertTrue(Files.readString(tmp.resolve("runs/report.html")).contains("<th>run-b</th>"));
        Path chosen = tmp.resolve("both.html");
        assertEquals(0, cli("report", a.toString(), b.toString(), "--out", chosen.toString()), err.toString());
        assertTrue(Files.readString(chosen).contains("\"run-a loss\""), "a series per run");
    }

    @Test
    void refusesWhatIsNotARunInOneLine() throws Exception {
        Path empty = Files.createDirectories(tmp.resolve("empty"));
        assertEquals(2, cli("report", empty.toString()));
        assertEquals("error: " + empty + " is not a run folder: it has no metrics.jsonl; give a run folder (runs/run-..., "
                + "where a training run writes config.conf and metrics.jsonl)\n", err.toString());
        assertFalse(Files.exists(empty.resolve("report.html")));
        err.getBuffer().setLength(0);
        Path a = run("run-a");
        Files.writeString(a.resolve("metrics.jsonl"), "{\"type\":\"train\",\"step\":1}\nnot json\n{}\n");
        assertEquals(2, cli("report", a.toString()));
        assertTrue(err.toString().startsWith("error: " + a.resolve("metrics.jsonl") + " line 2 is not JSON")
                && err.toString().split("\n").length == 1, err.toString());
        err.getBuffer().setLength(0);
        assertEquals(2, cli("report", run("run-b").toString(), "--out", tmp.resolve("no/such/x.html").toString()));
        assertTrue(err.toString().startsWith("error: --out ") && err.toString().contains("create it"), err.toString());
        err.getBuffer().setLength(0);
        assertEquals(2, cli("report", run("run-c").toString(), "--out", tmp.toString()));
        assertEquals("error: --out " + tmp + " is a folder; give a file, such as " + tmp.resolve("report.html") + "\n",
                err.toString());
        err.getBuffer().setLength(0);
        assertEquals(2, cli("report"));
        assertTrue(err.toString().startsWith("error: Missing required parameter"), err.toString());
    }
}
