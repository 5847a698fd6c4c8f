package io.roundhouse.driver;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code roundhouse bench layer} at tiny shapes: the stable JSON fields are there and consistent
 * with each other, the ideal counts the six expert GEMMs' FLOPs, the layer's phases are split out,
 * and PyTorch's layer ran at the same shapes or the output says why not. Bad shapes are refused.
 */
@Timeout(120)
class BenchLayerTest {
    @TempDir
    Path tmp;

    @Test
    void measuresTheLayerBesideItsBaselines() throws Exception {
        Path json = tmp.resolve("layer.json");
        StringWriter o = new StringWriter();
        StringWriter e = new StringWriter();
        for (String act : List.of("gelu", "swiglu")) {
            int code = RoundhouseCli.run(new String[] {"bench", "layer", "--tokens", "64", "--dim", "16", "--ffn", "24",
                "--experts", "4", "--topk", "2", "--activation", act, "--seconds", "0.05", "--json", json.toString()},
                    new PrintWriter(o, true), new PrintWriter(e, true));
            assertEquals(0, code, e.toString());
            JsonNode r = new ObjectMapper().readTree(json.toFile());
            for (String k : List.of("layer_ms", "layer_min_ms", "layer_max_ms", "ideal_ms", "ideal_floor_ms", "sgemm_gflops")) {
                assertTrue(r.path(k).asDouble() > 0, k + " in " + r);
            }
            assertTrue(r.path("layer_min_ms").asDouble() <= r.path("layer_ms").asDouble()
                    && r.path("layer_ms").asDouble() <= r.path("layer_max_ms").asDouble(), r.toString());
            int f1 = act.equals("swiglu") ? 48 : 24;
            assertEquals(6.0 * 64 * 2 * 16 * (f1 + 24) / 1e9, r.path("ideal_gflop").asDouble(), 1e-15);
            assertEquals(r.path("layer_ms").asDouble() / r.path("ideal_ms").asDouble(),
                    r.path("layer_over_ideal").asDouble(), 1e-12);
            for (String phase : List.of("route", "permute", "experts", "unpermute")) {
                assertTrue(r.path("phases_ms").path(phase).asDouble() > 0, phase + " in " + r.path("phases_ms"));
            }
            JsonNode torch = r.path("pytorch");
            assertTrue(torch.has("layer_ms") ? r.path("speed_vs_pytorch").asDouble() > 0
                    : torch.path("skipped").asText().contains("python3"), torch.toString());
            // PyTorch 2.7 through DJL: measured (its routed output equal to every expert run on every
            // token, weighted where chosen) where scripts/djl-layer-bench --fetch ran once, else skipped
            JsonNode djl = r.path("pytorch_djl");
            if (djl.has("layer_ms")) {
                assertTrue(r.path("speed_vs_pytorch_djl").asDouble() > 0, djl.toString());
                assertTrue(djl.path("check_max_abs_diff").asDouble(1) < 1e-4, djl.toString());
                assertTrue(djl.path("torch").asText().startsWith("2."), djl.toString());
            } else {
                assertTrue(djl.path("skipped").asText().contains("--fetch"), djl.toString());
            }
        }
        assertTrue(o.toString().contains("layer / ideal:"), o.toString());
        StringWriter bad = new StringWriter();
        assertEquals(2, RoundhouseCli.run(new String[] {"bench", "layer", "--topk", "9"}, new PrintWriter(new StringWriter()),
                new PrintWriter(bad, true)));
        assertTrue(bad.toString().contains("--topk in [1, --experts]"), bad.toString());
    }
}
