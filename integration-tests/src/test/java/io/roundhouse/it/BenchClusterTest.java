package io.roundhouse.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.roundhouse.worker.ChartPages;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code roundhouse bench cluster} on an embedded local[2] Spark: the links stage, the layer at
 * W = 1 and 2 under both scalings, the model at W = 1, the fitted cost model and its predictions,
 * written as results.json, report.md and report.html, whose every chart draws every point in
 * headless Chromium (where it is installed). Bad options are refused before anything runs.
 */
@Timeout(240)
class BenchClusterTest {
    @TempDir
    Path tmp;

    static List<String> tiny(Path out) {
        return new ArrayList<>(List.of("bench", "cluster", "--seconds", "0.02", "--max-size", "65536", "--out",
                out.toString(), "-c", Path.of("..", "conf", "kjv-moe-lm.conf").toAbsolutePath().toString(),
                "model.dim=16", "model.heads=2", "model.expertHidden=16", "model.blocks=2", "data.seqLen=16",
                "train.batchSize=4", "backend=cpu"));
    }

    @Test
    void measuresTheLocalClusterAndDrawsItsReport() throws Exception {
        Path out = tmp.resolve("bench");
        List<String> args = tiny(out);
        args.add("workers=2");
        Cli.Outcome r = Cli.run(args.toArray(String[]::new));
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("alpha-beta fit:"), r.out());
        JsonNode results = new ObjectMapper().readTree(out.resolve("results.json").toFile());
        assertEquals("auto", results.path("transport").asText());
        JsonNode links = results.path("links");
        assertEquals(2, links.path("workers").asInt());
        assertEquals(List.of("alltoall", "alltoall", "alltoall", "allreduce", "allreduce", "allreduce"),
                ops(links.path("collectives")), "4, 16 and 64 KiB; one host: no two-level rows");
        List<String> layers = new ArrayList<>();
        results.path("layers").forEach(l -> layers.add(l.path("scaling").asText() + l.path("workers").asInt() + ":"
                + l.path("tokensPerWorker").asInt()));
        assertEquals(List.of("weak1:64", "strong1:64", "weak2:64", "strong2:32"), layers);
        assertEquals(64, results.path("model").path("tokensPerStep").asInt());
        JsonNode cm = results.path("costModel");
        assertEquals(6, cm.path("collectives").size());
        assertEquals(4, cm.path("layers").size());
        assertEquals(ClusterBenchWorkers.PREDICTED, cm.path("predictions").path("flat").size());
        assertEquals(ClusterBenchWorkers.PREDICTED, cm.path("predictions").path("twoLevel").size());
        String md = Files.readString(out.resolve("report.md"));
        for (String section : List.of("## Links", "## Collectives", "## One MoE layer: scaling", "## α–β model",
                "| strong | 2 | 1 | 32 |")) {
            assertTrue(md.contains(section), section + " in\n" + md);
        }
        assumeTrue(ChartPages.chromium() != null, "chromium is not installed (Debian: apt-get install chromium); "
                + "the page is not drawn");
        Map<String, ChartPages.Chart> charts = ChartPages.render(out.resolve("report.html"), tmp, "bench-cluster");
        assertEquals(7, charts.size(), charts.keySet().toString());
        assertEquals(3, charts.get("Bus bandwidth by size").given("alltoall busbw"));
        assertEquals(2, charts.get("Point-to-point bandwidth").given("bandwidth MB/s"), "two ordered pairs");
        assertEquals(2, charts.get("One MoE layer: tokens/s by workers").given("strong"));
        assertEquals(6, charts.get("Predicted training step of the configured model").given("two-level step"));
    }

    @Test
    void refusesBadOptionsBeforeMeasuring() {
        Cli.Outcome small = Cli.run("bench", "cluster", "--max-size", "1000");
        assertEquals(2, small.code());
        assertTrue(small.err().contains("--max-size 1000 is below the smallest size, 4096"), small.err());
        Cli.Outcome steps = Cli.run("bench", "cluster", "--steps", "50");
        assertEquals(2, steps.code());
        assertTrue(steps.err().contains("--steps is not read by bench cluster"), steps.err());
        Cli.Outcome many = Cli.run("bench", "cluster", "--workers", "1,65");
        assertEquals(2, many.code(), many.out() + many.err());
        assertTrue(many.err().contains("each worker count must be in [1, 64]"), many.err());
    }

    /** How many worker counts the model's step is predicted at (ClusterBench.PREDICTED). */
    private static final class ClusterBenchWorkers {
        static final int PREDICTED = 6;
    }

    private static List<String> ops(JsonNode rows) {
        List<String> ops = new ArrayList<>();
        rows.forEach(x -> ops.add(x.path("op").asText()));
        return ops;
    }
}
