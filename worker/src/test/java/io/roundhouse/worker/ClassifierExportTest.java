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
import io.roundhouse.worker.export.ClassifierExport;
import io.roundhouse.worker.export.ModelExport;
import io.roundhouse.worker.model.ModelSpec;
import io.roundhouse.worker.model.MoeClassifier;
import io.roundhouse.worker.model.NormKind;
import io.roundhouse.worker.model.Param;
import io.roundhouse.worker.model.StnSpec;
import io.roundhouse.worker.train.ModelCheckpoint;
import io.roundhouse.worker.train.Trainer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The classifier's export: every tensor's name, shape and values against the model's parameters
 * read by plain index arithmetic (so a wrong transpose or split fails), for SwiGLU with LayerNorm
 * and a Self-Tuning Network (left out) and for GELU with RMSNorm; config.json; a classifier
 * checkpoint exported as the model it loads to, with the top-k and gate it was trained with.
 *
 * <p>Legend: I inputs, C classes, D width, E experts, F expert hidden width, F1 pre-activation width.
 */
@Timeout(120)
class ClassifierExportTest {
    private static final int I = 12;
    private static final int C = 5;
    private static final int D = 8;
    private static final int E = 3;
    private static final int F = 4;

    @TempDir
    Path tmp;

    private static MoeClassifier model(Activation act, NormKind norm, StnSpec stn) {
        ModelSpec spec = new ModelSpec(I, C, D, 2, E, 2, F, act, norm, GateMode.SOFTMAX_TOPK, 0, 0.1, 0.1, 0.01,
                0.001, 0, stn, Precision.FP32);
        MoeClassifier model = MoeClassifier.local(new CpuBackend(), spec, 7, 4);
        // Every value distinct and non-trivial (biases start at 0, gains at 1): a misplaced one shows.
        SplittableRandom rnd = new SplittableRandom(11);
        for (Param p : model.params().all()) {
            float[] v = new float[p.value().size()];
            for (int i = 0; i < v.length; i++) {
                v[i] = (float) rnd.nextGaussian();
            }
            model.backend().write(p.value(), v);
        }
        return model;
    }

    @Test
    void swigluLayerNormWithItsStnLeftOut() throws Exception {
        MoeClassifier model = model(Activation.SWIGLU, NormKind.LAYERNORM,
                new StnSpec(List.of(io.roundhouse.worker.model.Hyper.DROPOUT_BLOCK), Set.of("embed", "router",
                        "experts", "head")));
        assertTrue(model.params().all().stream().anyMatch(p -> p.name().contains("stn")), "the model has an STN");
        Path out = tmp.resolve("swiglu");
        ClassifierExport.write(model, out);
        check(model, out);
        JsonNode c = new ObjectMapper().readTree(out.resolve(ModelExport.CONFIG).toFile());
        assertEquals("roundhouse_moe_classifier", c.path("model_type").asText());
        assertEquals(I, c.path("input_size").asInt());
        assertEquals(C, c.path("num_labels").asInt());
        assertEquals(D, c.path("hidden_size").asInt());
        assertEquals(2, c.path("num_hidden_layers").asInt());
        assertEquals(E, c.path("num_local_experts").asInt());
        assertEquals(2, c.path("num_experts_per_tok").asInt());
        assertEquals(F, c.path("intermediate_size").asInt());
        assertEquals("silu", c.path("hidden_act").asText());
        assertTrue(c.path("expert_glu").asBoolean());
        assertEquals("softmax_topk", c.path("router_gate").asText());
        assertEquals("layernorm", c.path("norm_type").asText());
        assertEquals(1e-5, c.path("norm_eps").asDouble(), 1e-12);
    }

    @Test
    void geluRmsNorm() throws Exception {
        MoeClassifier model = model(Activation.GELU, NormKind.RMSNORM, StnSpec.NONE);
        Path out = tmp.resolve("gelu");
        ClassifierExport.write(model, out);
        check(model, out);
        JsonNode c = new ObjectMapper().readTree(out.resolve(ModelExport.CONFIG).toFile());
        assertEquals("gelu_pytorch_tanh", c.path("hidden_act").asText());
        assertFalse(c.path("expert_glu").asBoolean());
        assertEquals("rmsnorm", c.path("norm_type").asText());
    }

    /** Every exported tensor against the parameter it comes from, element by element. */
    private static void check(MoeClassifier model, Path out) throws Exception {
        ModelSpec spec = model.spec();
        check(model, out, spec.activation() == Activation.SWIGLU, spec.norm() == NormKind.LAYERNORM, spec.inputs(),
                spec.classes(), spec.dim(), spec.blocks(), spec.experts(), spec.expertHidden());
    }

    @SuppressWarnings("checkstyle:ParameterNumber")
    private static void check(MoeClassifier model, Path out, boolean glu, boolean layerNorm, int I, int C, int D,
                              int blocks, int E, int F) throws Exception {
        LmExportTest.Read r = LmExportTest.read(out.resolve(ModelExport.WEIGHTS));
        Set<String> expected = new TreeSet<>(List.of("embed.weight", "embed.bias", "norm.weight", "classifier.weight",
                "classifier.bias"));
        if (layerNorm) {
            expected.add("norm.bias");
        }
        int f1 = glu ? 2 * F : F;
        float[] embedW = value(model, "embed.w");  // [I, D]
        float[] headW = value(model, "head.w");    // [D, C]
        for (int o = 0; o < D; o++) {
            for (int i = 0; i < I; i++) {
                assertEquals(embedW[i * D + o], at(r, "embed.weight", new int[] {D, I}, o, i));
            }
        }
        for (int o = 0; o < C; o++) {
            for (int i = 0; i < D; i++) {
                assertEquals(headW[i * C + o], at(r, "classifier.weight", new int[] {C, D}, o, i));
            }
        }
        assertArrayEquals(value(model, "embed.b"), r.values().get("embed.bias"));
        assertArrayEquals(value(model, "head.b"), r.values().get("classifier.bias"));
        assertArrayEquals(value(model, "final.norm.gamma"), r.values().get("norm.weight"));
        if (layerNorm) {
            assertArrayEquals(value(model, "final.norm.beta"), r.values().get("norm.bias"));
        }
        for (int b = 0; b < blocks; b++) {
            String from = "block" + b + ".";
            String to = "layers." + b + ".";
            expected.add(to + "norm.weight");
            assertArrayEquals(value(model, from + "norm.gamma"), r.values().get(to + "norm.weight"));
            if (layerNorm) {
                expected.add(to + "norm.bias");
                assertArrayEquals(value(model, from + "norm.beta"), r.values().get(to + "norm.bias"));
            }
            expected.add(to + "moe.gate.weight");
            float[] router = value(model, from + "moe.router.w");  // [D, E]
            for (int o = 0; o < E; o++) {
                for (int i = 0; i < D; i++) {
                    assertEquals(router[i * E + o], at(r, to + "moe.gate.weight", new int[] {E, D}, o, i));
                }
            }
            float[] w1 = value(model, from + "moe.experts.w1");  // [E, D, F1]
            float[] b1 = value(model, from + "moe.experts.b1");  // [E, F1]
            float[] w2 = value(model, from + "moe.experts.w2");  // [E, F, D]
            float[] b2 = value(model, from + "moe.experts.b2");  // [E, D]
            for (int j = 0; j < E; j++) {
                String x = to + "moe.experts." + j + ".";
                List<String> names = new ArrayList<>(List.of("w1.weight", "w1.bias", "w2.weight", "w2.bias"));
                if (glu) {
                    names.addAll(List.of("w3.weight", "w3.bias"));
                }
                names.forEach(n -> expected.add(x + n));
                for (int h = 0; h < F; h++) {
                    for (int i = 0; i < D; i++) {
                        assertEquals(w1[(j * D + i) * f1 + h], at(r, x + "w1.weight", new int[] {F, D}, h, i));
                        if (glu) {
                            assertEquals(w1[(j * D + i) * f1 + F + h], at(r, x + "w3.weight", new int[] {F, D}, h, i));
                        }
                        assertEquals(w2[(j * F + h) * D + i], at(r, x + "w2.weight", new int[] {D, F}, i, h));
                    }
                    assertEquals(b1[j * f1 + h], r.values().get(x + "w1.bias")[h]);
                    if (glu) {
                        assertEquals(b1[j * f1 + F + h], r.values().get(x + "w3.bias")[h]);
                    }
                }
                for (int i = 0; i < D; i++) {
                    assertEquals(b2[j * D + i], r.values().get(x + "w2.bias")[i]);
                }
            }
        }
        assertEquals(expected, new TreeSet<>(r.shapes().keySet()), "every parameter mapped, nothing else");
        assertEquals("pt", r.metadata().path("format").asText());
    }

    private static float[] value(MoeClassifier model, String name) {
        return model.params().read(model.params().get(name));
    }

    /** Element [row, col] of tensor {@code name}, whose shape must be {@code shape}. */
    private static float at(LmExportTest.Read r, String name, int[] shape, int row, int col) {
        assertArrayEquals(shape, r.shapes().get(name), name + "'s shape");
        return r.values().get(name)[row * shape[1] + col];
    }

    @Test
    void aCheckpointExportsAsTheModelItLoadsWithItsTopKAndGate() throws Exception {
        Map<String, String> m = ClassifierFixtures.config(tmp.resolve("images"), tmp.resolve("runs"));
        m.put("model.topK", "1");
        m.put("model.gate", "softmax_topk_renorm");
        Trainer.Result run = TrainerGroups.train(m, 1, tmp.resolve("aeron"), "cls").get(0);
        String ckpt = run.runDir().resolve("checkpoints").toString();
        Path out = tmp.resolve("from-checkpoint");
        ModelExport.run(new CpuBackend(), ckpt, CheckpointStore::local, out);
        MoeClassifier loaded = ModelCheckpoint.open(ckpt, CheckpointStore::local).classifier(new CpuBackend(), 1,
                "(test)");
        assertEquals(1, loaded.spec().topK());
        assertEquals(GateMode.SOFTMAX_TOPK_RENORM, loaded.spec().gate());
        check(loaded, out);
        JsonNode c = new ObjectMapper().readTree(out.resolve(ModelExport.CONFIG).toFile());
        assertEquals(1, c.path("num_experts_per_tok").asInt());
        assertEquals("softmax_topk_renorm", c.path("router_gate").asText());
        // The run's own export (from its model in memory) holds the same tensors.
        LmExportTest.Read own = LmExportTest.read(run.runDir().resolve("export").resolve(ModelExport.WEIGHTS));
        LmExportTest.Read fromCheckpoint = LmExportTest.read(out.resolve(ModelExport.WEIGHTS));
        assertEquals(fromCheckpoint.shapes().keySet(), own.shapes().keySet());
        for (String name : own.values().keySet()) {
            assertArrayEquals(fromCheckpoint.values().get(name), own.values().get(name), name);
        }
        assertTrue(Files.exists(run.runDir().resolve("export").resolve(ModelExport.CONFIG)));
    }
}
