package io.roundhouse.driver.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.roundhouse.comms.GroupHarness;
import io.roundhouse.comms.Transport;
import io.roundhouse.worker.config.JobConfig;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * What bench cluster measures, on members that are threads of this JVM: the matrices have a
 * figure for every ordered pair and none on the diagonal, every collective's bus bandwidth is its
 * algorithm bandwidth times nccl-tests' factor, a group over two (named) hosts also runs the
 * two-level all-to-all, only rank 0 returns figures, and the layer and model steps are split into
 * phases that add up to no more than the step.
 */
@Timeout(120)
class ClusterProbeTest {
    @TempDir
    Path aeron;

    private static JobConfig lm() {
        return JobConfig.of(Map.of("model.kind", "lm", "model.dim", "16", "model.heads", "2", "model.experts", "4",
                "model.topK", "2", "model.expertHidden", "16", "model.blocks", "2", "data.seqLen", "8",
                "train.batchSize", "4", "backend", "cpu"));
    }

    @Test
    void linksOverFourMembersOnTwoHosts() throws Exception {
        List<String> hosts = List.of("a", "a", "b", "b");
        List<Map<String, Object>> results = GroupHarness.run(GroupHarness.config(Transport.UDP, aeron), 4, 0,
                c -> new ClusterProbe(c, hosts, 0.01).links(List.of(4096, 65536)));
        for (int r = 1; r < 4; r++) {
            assertNull(results.get(r), "only rank 0 returns the figures");
        }
        Map<String, Object> links = results.get(0);
        double[][] lat = (double[][]) links.get("latencySeconds");
        double[][] bw = (double[][]) links.get("bandwidthBytesPerSecond");
        for (int i = 0; i < 4; i++) {
            for (int j = 0; j < 4; j++) {
                assertTrue(i == j ? lat[i][j] == 0 && bw[i][j] == 0 : lat[i][j] > 0 && bw[i][j] > 0,
                        "pair " + i + "→" + j + ": " + lat[i][j] + " s, " + bw[i][j] + " B/s");
                assertEquals(lat[i][j], lat[j][i], "a round trip's half, both ways");
            }
        }
        @SuppressWarnings("unchecked")
        List<Map<String, Object>> rows = (List<Map<String, Object>>) links.get("collectives");
        assertEquals(List.of("alltoall", "alltoall", "alltoall-2level", "alltoall-2level", "allreduce", "allreduce"),
                rows.stream().map(x -> x.get("op")).toList());
        for (Map<String, Object> row : rows) {
            long bytes = (long) row.get("bytes");
            assertTrue(bytes == 4096 || bytes == 65536, row.toString());
            double alg = (double) row.get("algbwBytesPerSecond");
            assertEquals(bytes / (double) row.get("seconds"), alg, alg * 1e-12);
            double factor = row.get("op").equals("allreduce") ? 2 * 3 / 4.0 : 3 / 4.0;
            assertEquals(alg * factor, (double) row.get("busbwBytesPerSecond"), alg * 1e-12, row.toString());
        }
        assertTrue((double) links.get("memcpyBytesPerSecond") > 1e8);
    }

    @Test
    void layerAndModelStepsSplitByPhase() throws Exception {
        List<Map<String, Object>> results = GroupHarness.run(GroupHarness.config(Transport.IPC, aeron), 2, 0,
                c -> new ClusterProbe(c, List.of("h", "h"), 0.01).layer(lm(), 32, "weak"));
        Map<String, Object> layer = results.get(0);
        assertNull(results.get(1));
        assertEquals(2, layer.get("workers"));
        assertEquals(1, layer.get("hosts"));
        double step = (double) layer.get("stepSeconds");
        @SuppressWarnings("unchecked")
        Map<String, Double> phases = (Map<String, Double>) layer.get("phaseMs");
        for (String p : List.of("route", "dispatch", "experts", "combine", "all_reduce")) {
            assertTrue(phases.getOrDefault(p, 0.0) > 0, p + " timed: " + phases);
        }
        // Phases are means over the workers; the step is the slowest worker's.
        assertTrue(phases.values().stream().mapToDouble(Double::doubleValue).sum() <= step * 1e3 * 1.001, phases + " " + step);
        double share = (double) layer.get("commShare");
        assertTrue(share > 0 && share < 1, "comm share " + share);
        assertEquals(64 / step, (double) layer.get("tokensPerSecond"), 1e-6 * 64 / step);

        Map<String, Object> model = ClusterProbe.model(lm(), 4, 0.01);
        assertEquals(32, model.get("tokensPerStep"));
        assertEquals(2, model.get("moeLayers"));
        long expert = (long) model.get("expertParameters");
        assertEquals(2L * 4 * 2 * 16 * 16, expert, "two layers of 4 experts (GELU: two matrices), D = F = 16, no biases");
        assertTrue((long) model.get("denseParameters") > 2 * 256 * 16, "at least the embedding and head");
        assertTrue((double) model.get("computeSeconds") > 0);
    }
}
