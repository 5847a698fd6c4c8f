package io.roundhouse.worker.export;

import static io.roundhouse.worker.export.ModelExport.columns;
import static io.roundhouse.worker.export.ModelExport.linear;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.roundhouse.kernels.Activation;
import io.roundhouse.worker.data.FashionMnist;
import io.roundhouse.worker.model.ModelSpec;
import io.roundhouse.worker.model.MoeClassifier;
import io.roundhouse.worker.model.NormKind;
import io.roundhouse.worker.model.NormLayer;
import io.roundhouse.worker.model.Param;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.function.IntFunction;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Exports the MoE-MLP classifier as {@code model.safetensors} + {@code config.json} under names of
 * its own in the Hugging Face manner (an {@code nn.Linear} per projection, weight [out, in], an
 * {@code nn.ModuleList} of experts per block), so that PyTorch code can load it
 * ({@code scripts/roundhouse_classifier_twin.py} is such code, and the test that it computes our
 * logits):
 *
 * <pre>
 * embed.weight [D, I], embed.bias [D]                      input projection
 * layers.{i}.norm.weight [D] (.bias [D]: LayerNorm)        block i's pre-norm
 * layers.{i}.moe.gate.weight [E, D]                        router, no bias
 * layers.{i}.moe.experts.{j}.w1.weight [F, D], .bias [F]   expert j: GELU's input, or SwiGLU's gate
 * layers.{i}.moe.experts.{j}.w3.weight [F, D], .bias [F]   expert j: SwiGLU's up (SwiGLU only)
 * layers.{i}.moe.experts.{j}.w2.weight [D, F], .bias [D]   expert j: output
 * norm.weight [D] (.bias [D]: LayerNorm)                   final norm
 * classifier.weight [C, D], classifier.bias [C]            head
 * </pre>
 *
 * The Self-Tuning Network's parameters are not part of the exported network (evaluation runs
 * without them). A parameter this class does not know is an error, not a silent omission.
 *
 * <p>Legend: I inputs, C classes, D width, E experts, F expert hidden width, F1 its pre-activation
 * width (F, or 2F packed [gate | up] for SwiGLU).
 */
public final class ClassifierExport {
    private static final Pattern BLOCK = Pattern.compile("block(\\d+)\\.(.+)");

    private ClassifierExport() {
    }

    /** Writes {@code model} as {@code model.safetensors} and {@code config.json} into {@code out} (created). */
    public static void write(MoeClassifier model, Path out) {
        ModelExport.checkOutput(out);
        ModelExport.writeFiles(tensors(model), config(model.spec()), out);
    }

    /** The model's tensors under their export names, in the model's parameter order. */
    static SafetensorsWriter tensors(MoeClassifier model) {
        ModelSpec spec = model.spec();
        SafetensorsWriter st = new SafetensorsWriter().meta("format", "pt");
        for (Param p : model.params().all()) {
            String name = p.name();
            if (ModelExport.stn(name)) {
                continue;  // the Self-Tuning Network: not part of the exported network
            }
            float[] v = model.params().read(p);
            int[] s = p.value().shape();
            switch (name) {
                case "embed.w" -> linear(st, "embed.weight", v, s);         // [I, D] → [D, I]
                case "embed.b" -> st.add("embed.bias", v, s[0]);
                case "final.norm.gamma" -> st.add("norm.weight", v, s[0]);
                case "final.norm.beta" -> st.add("norm.bias", v, s[0]);
                case "head.w" -> linear(st, "classifier.weight", v, s);     // [D, C] → [C, D]
                case "head.b" -> st.add("classifier.bias", v, s[0]);
                default -> block(st, name, v, s, spec.activation());
            }
        }
        return st;
    }

    private static void block(SafetensorsWriter st, String name, float[] v, int[] s, Activation act) {
        Matcher m = BLOCK.matcher(name);
        if (!m.matches()) {
            throw unknown(name);
        }
        String to = "layers." + m.group(1) + ".";
        switch (m.group(2)) {
            case "norm.gamma" -> st.add(to + "norm.weight", v, s[0]);
            case "norm.beta" -> st.add(to + "norm.bias", v, s[0]);
            default -> {
                if (!moe(st, to, m.group(2), v, s, act)) {
                    throw unknown(name);
                }
            }
        }
    }

    /**
     * Block parameter {@code rest} of an MoE layer ({@code moe.router.*}, {@code moe.experts.*},
     * {@code moe.shared.*}) under its export names after {@code to} ("layers.{i}."); the NiNformer's
     * MoE layers export the same way.
     *
     * @return false when {@code rest} is not an MoE layer's parameter
     */
    static boolean moe(SafetensorsWriter st, String to, String rest, float[] v, int[] s, Activation act) {
        switch (rest) {
            case "moe.router.w" -> linear(st, to + "moe.gate.weight", v, s);  // [D, E] → [E, D]
            case "moe.router.bias" -> st.add(to + "moe.gate.e_score_correction_bias", v, s[0]);
            case "moe.router.noise" -> {
                // the noisy router's noise scale acts in training only
            }
            case "moe.experts.w1" -> w1(st, jj -> expert(to, jj), v, s, act);
            case "moe.experts.b1" -> b1(st, jj -> expert(to, jj), v, s, act);
            case "moe.experts.w2" -> w2(st, jj -> expert(to, jj), v, s);
            case "moe.experts.b2" -> b2(st, jj -> expert(to, jj), v, s);
            // the shared experts (DeepSeekMoE) as one FFN: a group of one
            case "moe.shared.w1" -> w1(st, jj -> to + "moe.shared_experts.", v, s, act);
            case "moe.shared.b1" -> b1(st, jj -> to + "moe.shared_experts.", v, s, act);
            case "moe.shared.w2" -> w2(st, jj -> to + "moe.shared_experts.", v, s);
            case "moe.shared.b2" -> b2(st, jj -> to + "moe.shared_experts.", v, s);
            default -> {
                return false;
            }
        }
        return true;
    }

    /** [E, D, F1] → per expert j: w1 [F, D] (GELU's input, or SwiGLU's gate), w3 [F, D] (SwiGLU's up). */
    private static void w1(SafetensorsWriter st, IntFunction<String> at, float[] v, int[] s, Activation act) {
        int d = s[1];
        int f1 = s[2];
        int f = act == Activation.SWIGLU ? f1 / 2 : f1;
        for (int j = 0; j < s[0]; j++) {
            int from = j * d * f1;
            st.add(at.apply(j) + "w1.weight", columns(v, from, d, f1, 0, f), f, d);
            if (act == Activation.SWIGLU) {
                st.add(at.apply(j) + "w3.weight", columns(v, from, d, f1, f, f), f, d);
            }
        }
    }

    /** [E, F1] → per expert j: w1.bias [F] (and SwiGLU's w3.bias [F]). */
    private static void b1(SafetensorsWriter st, IntFunction<String> at, float[] v, int[] s, Activation act) {
        int f1 = s[1];
        int f = act == Activation.SWIGLU ? f1 / 2 : f1;
        for (int j = 0; j < s[0]; j++) {
            st.add(at.apply(j) + "w1.bias", Arrays.copyOfRange(v, j * f1, j * f1 + f), f);
            if (act == Activation.SWIGLU) {
                st.add(at.apply(j) + "w3.bias", Arrays.copyOfRange(v, j * f1 + f, j * f1 + f1), f);
            }
        }
    }

    /** [E, F, D] → per expert j: w2 [D, F]. */
    private static void w2(SafetensorsWriter st, IntFunction<String> at, float[] v, int[] s) {
        for (int j = 0; j < s[0]; j++) {
            st.add(at.apply(j) + "w2.weight", columns(v, j * s[1] * s[2], s[1], s[2], 0, s[2]), s[2], s[1]);
        }
    }

    /** [E, D] → per expert j: w2.bias [D]. */
    private static void b2(SafetensorsWriter st, IntFunction<String> at, float[] v, int[] s) {
        for (int j = 0; j < s[0]; j++) {
            st.add(at.apply(j) + "w2.bias", Arrays.copyOfRange(v, j * s[1], (j + 1) * s[1]), s[1]);
        }
    }

    private static String expert(String block, int j) {
        return block + "moe.experts." + j + ".";
    }

    private static IllegalStateException unknown(String name) {
        return ModelExport.unknown(name, "ClassifierExport (and the twin, scripts/roundhouse_classifier_twin.py)");
    }

    /** config.json: every shape and option a PyTorch implementation of the forward needs, with notes. */
    static ObjectNode config(ModelSpec spec) {
        ObjectNode c = ModelExport.JSON.createObjectNode();
        c.putArray("architectures").add("RoundhouseMoeClassifier");
        c.put("model_type", "roundhouse_moe_classifier");
        c.put("input_size", spec.inputs());
        c.put("num_labels", spec.classes());
        c.put("hidden_size", spec.dim());
        c.put("num_hidden_layers", spec.blocks());
        c.put("num_local_experts", spec.experts());
        c.put("num_experts_per_tok", spec.topK());
        c.put("n_shared_experts", spec.sharedExperts());
        c.put("intermediate_size", spec.expertHidden());
        c.put("hidden_act", spec.activation() == Activation.SWIGLU ? "silu" : "gelu_pytorch_tanh");
        c.put("expert_glu", spec.activation() == Activation.SWIGLU);
        c.put("expert_bias", true);
        ModelExport.router(c, spec);
        c.put("norm_type", spec.norm().name().toLowerCase(Locale.ROOT));
        c.put("norm_eps", (double) NormLayer.EPS);
        c.put("torch_dtype", "float32");
        ObjectNode notes = c.putObject("notes");
        notes.put("forward", "h = embed(x); per layer: h = h + moe(norm(h)); logits = classifier(norm(h)); "
                + "softmax(logits) are the class probabilities (no dropout, router jitter or capacity limit in "
                + "evaluation)");
        notes.put("moe", "logits = gate(x); S = the num_experts_per_tok largest (ties to the lower expert); "
                + "y = sum over j in S of gates_j * expert_j(x); with n_shared_experts > 0, plus shared_experts(x): "
                + "one expert of width n_shared_experts * intermediate_size, gate 1 (DeepSeekMoE)");
        notes.put("expert", spec.activation() == Activation.SWIGLU
                ? "expert_glu: w2(silu(w1(x)) * w3(x)), each with its bias"
                : "w2(gelu(w1(x), approximate='tanh')), each with its bias");
        notes.put("router_gate", ModelExport.routerNote(spec));
        notes.put("norm", spec.norm() == NormKind.RMSNORM
                ? "rmsnorm: y = x / sqrt(mean(x^2) + norm_eps) * weight"
                : "layernorm: y = (x - mean(x)) / sqrt(var(x) + norm_eps) * weight + bias (var: the population's)");
        notes.put("inputs", String.format(Locale.ROOT, "the features as Roundhouse reads them: IDX images row by row as "
                + "(pixel / 255 - %s) / %s; Parquet features as stored", FashionMnist.MEAN, FashionMnist.STD));
        return c;
    }
}
