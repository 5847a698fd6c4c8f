package io.roundhouse.worker;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.roundhouse.kernels.Activation;
import io.roundhouse.kernels.GateMode;
import io.roundhouse.kernels.Precision;
import io.roundhouse.kernels.cpu.CpuBackend;
import io.roundhouse.worker.checkpoint.CheckpointStore;
import io.roundhouse.worker.export.LmExport;
import io.roundhouse.worker.export.ModelExport;
import io.roundhouse.worker.export.SafetensorsWriter;
import io.roundhouse.worker.model.LmSpec;
import io.roundhouse.worker.model.ModelSpec;
import io.roundhouse.worker.model.MoeTransformer;
import io.roundhouse.worker.model.NormKind;
import io.roundhouse.worker.model.StnSpec;
import io.roundhouse.worker.train.Trainer;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The safetensors writer read back by a plain parser (names, shapes, contiguous offsets, 8-byte
 * alignment, values); the export's names and shapes for a model with MoE and dense blocks, a gate
 * and a Self-Tuning Network (left out), and for a tied one; its refusal of an existing export.
 */
@Timeout(120)
class LmExportTest {
    @TempDir
    Path tmp;

    /** A safetensors file parsed by hand: name → (shape, values), in file order. */
    record Read(Map<String, int[]> shapes, Map<String, float[]> values, JsonNode metadata) {
    }

    static Read read(Path file) throws IOException {
        byte[] all = Files.readAllBytes(file);
        ByteBuffer b = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN);
        long n = b.getLong();
        assertEquals(0, (8 + n) % 8, "the data starts 8-byte aligned");
        JsonNode h = new ObjectMapper().readTree(new String(all, 8, (int) n, StandardCharsets.UTF_8));
        Map<String, int[]> shapes = new LinkedHashMap<>();
        Map<String, float[]> values = new LinkedHashMap<>();
        List<long[]> offsets = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = h.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (e.getKey().equals("__metadata__")) {
                continue;
            }
            assertEquals("F32", e.getValue().path("dtype").asText());
            int[] shape = new int[e.getValue().path("shape").size()];
            long size = 1;
            for (int i = 0; i < shape.length; i++) {
                shape[i] = e.getValue().path("shape").get(i).asInt();
                size *= shape[i];
            }
            long begin = e.getValue().path("data_offsets").get(0).asLong();
            long end = e.getValue().path("data_offsets").get(1).asLong();
            assertEquals(4 * size, end - begin, e.getKey() + ": offsets span its shape");
            offsets.add(new long[] {begin, end});
            float[] v = new float[(int) size];
            ByteBuffer.wrap(all, (int) (8 + n + begin), (int) (end - begin)).order(ByteOrder.LITTLE_ENDIAN)
                    .asFloatBuffer().get(v);
            shapes.put(e.getKey(), shape);
            values.put(e.getKey(), v);
        }
        offsets.sort((x, y) -> Long.compare(x[0], y[0]));
        long at = 0;
        for (long[] o : offsets) {
            assertEquals(at, o[0], "tensors are contiguous");
            at = o[1];
        }
        assertEquals(all.length - 8 - n, at, "the data ends with the last tensor");
        return new Read(shapes, values, h.path("__metadata__"));
    }

    @Test
    void writerRoundTrips() throws Exception {
        float[] a = {1f, -2.5f, Float.MIN_VALUE, Float.MAX_VALUE, -0f, 3e-8f};
        float[] b = {7f};
        float[] empty = {};
        Path f = tmp.resolve("t.safetensors");
        new SafetensorsWriter().meta("format", "pt").add("a.weight", a, 2, 3).add("b", b, 1).add("e", empty, 0, 4)
                .write(f);
        Read r = read(f);
        assertEquals(List.of("a.weight", "b", "e"), new ArrayList<>(r.shapes().keySet()));
        assertArrayEquals(new int[] {2, 3}, r.shapes().get("a.weight"));
        assertArrayEquals(new int[] {0, 4}, r.shapes().get("e"));
        assertArrayEquals(a, r.values().get("a.weight"));
        assertArrayEquals(b, r.values().get("b"));
        assertEquals("pt", r.metadata().path("format").asText());
        assertFalse(Files.exists(tmp.resolve("t.safetensors.tmp")), "no temp file left");
        assertThrows(IllegalArgumentException.class, () -> new SafetensorsWriter().add("x", a, 4, 2));
        assertThrows(IllegalArgumentException.class, () -> new SafetensorsWriter().add("x", b, 1).add("x", b, 1));
    }

    private static LmSpec spec(boolean tied, boolean gate, int moeEvery, StnSpec stn) {
        return new LmSpec(new ModelSpec(256, 256, 16, 2, 4, 2, 8, Activation.SWIGLU, NormKind.RMSNORM,
                GateMode.TOPK_SOFTMAX, 0, 0, 0.1, 0.01, 0.001, 0, stn, Precision.FP32), 8, 4, 2, 10000, moeEvery, 12,
                gate, 0.0, tied);
    }

    @Test
    void namesShapesAndValuesOfAnMoeAndDenseModelWithoutItsStn() throws Exception {
        MoeTransformer model = MoeTransformer.local(new CpuBackend(),
                spec(false, true, 2, new StnSpec(MoeTransformer.TUNABLE, Set.of("attention", "router", "experts"))),
                3, 1);
        assertTrue(model.params().all().stream().anyMatch(p -> p.name().contains("stn")), "the model has an STN");
        Path out = tmp.resolve("out");
        LmExport.write(model, out);
        Read r = read(out.resolve(ModelExport.WEIGHTS));
        Set<String> expected = new TreeSet<>(List.of("model.embed_tokens.weight", "model.norm.weight",
                "lm_head.weight"));
        for (int b = 0; b < 2; b++) {
            String p = "model.layers." + b + ".";
            expected.addAll(List.of(p + "input_layernorm.weight", p + "post_attention_layernorm.weight",
                    p + "self_attn.q_proj.weight", p + "self_attn.k_proj.weight", p + "self_attn.v_proj.weight",
                    p + "self_attn.o_proj.weight", p + "self_attn.o_gate.weight"));
        }
        expected.addAll(List.of("model.layers.0.mlp.gate_proj.weight", "model.layers.0.mlp.up_proj.weight",
                "model.layers.0.mlp.down_proj.weight", "model.layers.1.block_sparse_moe.gate.weight"));
        for (int j = 0; j < 4; j++) {
            for (String w : new String[] {"w1", "w2", "w3"}) {
                expected.add("model.layers.1.block_sparse_moe.experts." + j + "." + w + ".weight");
            }
        }
        assertEquals(expected, new TreeSet<>(r.shapes().keySet()));
        assertArrayEquals(new int[] {256, 16}, r.shapes().get("lm_head.weight"));
        assertArrayEquals(new int[] {16, 16}, r.shapes().get("model.layers.0.self_attn.q_proj.weight"));
        assertArrayEquals(new int[] {8, 16}, r.shapes().get("model.layers.0.self_attn.k_proj.weight"));
        assertArrayEquals(new int[] {12, 16}, r.shapes().get("model.layers.0.mlp.up_proj.weight"));
        assertArrayEquals(new int[] {16, 12}, r.shapes().get("model.layers.0.mlp.down_proj.weight"));
        assertArrayEquals(new int[] {4, 16}, r.shapes().get("model.layers.1.block_sparse_moe.gate.weight"));
        assertArrayEquals(new int[] {8, 16}, r.shapes().get("model.layers.1.block_sparse_moe.experts.2.w3.weight"));
        assertArrayEquals(new int[] {16, 8}, r.shapes().get("model.layers.1.block_sparse_moe.experts.2.w2.weight"));
        // Values: expert 2's w3 (up) is columns F..2F of its [D, 2F] slice, transposed; w2 its [F, D] transposed.
        float[] w1 = model.params().read(model.params().get("block1.moe.experts.w1"));  // [E, D, 2F]
        float[] w2 = model.params().read(model.params().get("block1.moe.experts.w2"));  // [E, F, D]
        float[] up = r.values().get("model.layers.1.block_sparse_moe.experts.2.w3.weight");
        float[] gate = r.values().get("model.layers.1.block_sparse_moe.experts.2.w1.weight");
        float[] down = r.values().get("model.layers.1.block_sparse_moe.experts.2.w2.weight");
        for (int f = 0; f < 8; f++) {
            for (int d = 0; d < 16; d++) {
                assertEquals(w1[2 * 16 * 16 + d * 16 + f], gate[f * 16 + d]);
                assertEquals(w1[2 * 16 * 16 + d * 16 + 8 + f], up[f * 16 + d]);
                assertEquals(w2[2 * 8 * 16 + f * 16 + d], down[d * 8 + f]);
            }
        }
        JsonNode c = new ObjectMapper().readTree(out.resolve(ModelExport.CONFIG).toFile());
        assertEquals("[1]", c.path("moe_layers").toString());
        assertEquals(12, c.path("dense_intermediate_size").asInt());
        assertEquals(8, c.path("intermediate_size").asInt());
        assertEquals("topk_softmax", c.path("router_gate").asText());
        assertEquals(1e-5, c.path("rms_norm_eps").asDouble(), 1e-12);
        assertTrue(c.path("attention_output_gate").asBoolean());
        assertFalse(c.path("tie_word_embeddings").asBoolean());
        assertTrue(c.path("notes").path("o_gate").asText().contains("sigmoid"));
    }

    @Test
    void tiedWithoutGateHasNoHeadAndNoOGate() throws Exception {
        Path out = tmp.resolve("tied");
        LmExport.write(MoeTransformer.local(new CpuBackend(), spec(true, false, 1, StnSpec.NONE), 3, 1), out);
        Set<String> names = read(out.resolve(ModelExport.WEIGHTS)).shapes().keySet();
        assertFalse(names.contains("lm_head.weight"));
        assertFalse(names.stream().anyMatch(n -> n.contains("o_gate") || n.contains(".mlp.")), names.toString());
        JsonNode c = new ObjectMapper().readTree(out.resolve(ModelExport.CONFIG).toFile());
        assertTrue(c.path("tie_word_embeddings").asBoolean());
        assertEquals("[0,1]", c.path("moe_layers").toString());
    }

    @Test
    void refusesAnExistingExport() throws Exception {
        Path out = tmp.resolve("twice");
        MoeTransformer model = MoeTransformer.local(new CpuBackend(), spec(false, true, 1, StnSpec.NONE), 3, 1);
        LmExport.write(model, out);
        UserException e = assertThrows(UserException.class, () -> LmExport.write(model, out));
        assertTrue(e.getMessage().contains("already holds model.safetensors") && e.getMessage().contains("--out"),
                e.getMessage());
    }
}
