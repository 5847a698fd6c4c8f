package io.roundhouse.worker.export;

import static io.roundhouse.worker.export.ModelExport.columns;
import static io.roundhouse.worker.export.ModelExport.linear;
import static io.roundhouse.worker.export.ModelExport.transpose;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.roundhouse.kernels.Activation;
import io.roundhouse.worker.model.LmSpec;
import io.roundhouse.worker.model.ModelSpec;
import io.roundhouse.worker.model.MoeTransformer;
import io.roundhouse.worker.model.NormLayer;
import io.roundhouse.worker.model.Param;
import java.nio.file.Path;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Exports a language model as {@code model.safetensors} + {@code config.json} under Mixtral's (and,
 * for dense blocks, Llama's) Hugging Face names, so that PyTorch code can load it
 * ({@code scripts/roundhouse_twin.py} is such code, and the test that it computes our logits).
 *
 * <p>Our linear weights are [in, out]; PyTorch's {@code Linear.weight} is [out, in]: every
 * projection is transposed. The packed SwiGLU weight [D, 2F] (gate columns first, then up: the
 * kernels compute {@code silu(a[:, :F]) ⊙ a[:, F:]}) splits into Mixtral's w1 (gate) and w3 (up).
 * The Self-Tuning Network's parameters are not part of the network that is exported (generation
 * also runs without them). A parameter this class does not know is an error, not a silent omission.
 *
 * <p>Legend: V vocabulary, D width, H heads, Hkv key/value heads, dh head width, E experts, F expert
 * hidden width, F' dense hidden width.
 */
public final class LmExport {
    private static final Pattern BLOCK = Pattern.compile("block(\\d+)\\.(.+)");

    private LmExport() {
    }

    /** Writes {@code model} as {@code model.safetensors} and {@code config.json} into {@code out} (created). */
    public static void write(MoeTransformer model, Path out) {
        ModelExport.checkOutput(out);
        LmSpec spec = model.lmSpec();
        ModelExport.writeFiles(tensors(model), config(spec), out);
    }

    /** The model's tensors under their Hugging Face names, in the model's parameter order. */
    static SafetensorsWriter tensors(MoeTransformer model) {
        LmSpec spec = model.lmSpec();
        int d = spec.moe().dim();
        boolean glu = spec.moe().activation() == Activation.SWIGLU;
        SafetensorsWriter st = new SafetensorsWriter().meta("format", "pt");
        for (Param p : model.params().all()) {
            String name = p.name();
            if (ModelExport.stn(name)) {
                continue;  // the Self-Tuning Network: not part of the exported network
            }
            float[] v = model.params().read(p);
            int[] s = p.value().shape();
            switch (name) {
                case "embed.table" -> st.add("model.embed_tokens.weight", v, s[0], s[1]);  // [V, D]
                case "final.norm.gamma" -> st.add("model.norm.weight", v, d);
                case "final.norm.beta" -> st.add("model.norm.bias", v, d);
                case "head.w" -> st.add("lm_head.weight", transpose(v, s[0], s[1]), s[1], s[0]);  // [D,V] → [V,D]
                default -> block(st, name, v, s, glu);
            }
        }
        return st;
    }

    /** A block's tensor; {@code glu}: the experts are SwiGLU (w1 gate, w3 up), else GELU (w1 only). */
    private static void block(SafetensorsWriter st, String name, float[] v, int[] s, boolean glu) {
        Matcher m = BLOCK.matcher(name);
        if (!m.matches()) {
            throw unknown(name);
        }
        String to = "model.layers." + m.group(1) + ".";
        switch (m.group(2)) {
            case "norm1.gamma" -> st.add(to + "input_layernorm.weight", v, s[0]);
            case "norm2.gamma" -> st.add(to + "post_attention_layernorm.weight", v, s[0]);
            case "norm1.beta" -> st.add(to + "input_layernorm.bias", v, s[0]);
            case "norm2.beta" -> st.add(to + "post_attention_layernorm.bias", v, s[0]);
            case "attention.wq.w" -> linear(st, to + "self_attn.q_proj.weight", v, s);
            case "attention.wk.w" -> linear(st, to + "self_attn.k_proj.weight", v, s);
            case "attention.wv.w" -> linear(st, to + "self_attn.v_proj.weight", v, s);
            case "attention.wg.w" -> linear(st, to + "self_attn.o_gate.weight", v, s);
            case "attention.wo.w" -> linear(st, to + "self_attn.o_proj.weight", v, s);
            case "ffn.w1.w" -> {
                // [D, 2F'] → gate [F', D], up [F', D]
                int f = s[1] / 2;
                st.add(to + "mlp.gate_proj.weight", columns(v, 0, s[0], s[1], 0, f), f, s[0]);
                st.add(to + "mlp.up_proj.weight", columns(v, 0, s[0], s[1], f, f), f, s[0]);
            }
            case "ffn.w2.w" -> linear(st, to + "mlp.down_proj.weight", v, s);
            case "moe.router.w" -> linear(st, to + "block_sparse_moe.gate.weight", v, s);  // [D,E] → [E,D]
            case "moe.router.bias" -> st.add(to + "block_sparse_moe.gate.e_score_correction_bias", v, s[0]);
            case "moe.router.noise" -> {
                // the noisy router's noise scale acts in training only
            }
            case "moe.experts.w1" -> {
                // [E, D, 2F] → per expert j: w1 (gate) [F, D], w3 (up) [F, D]; GELU's [E, D, F] → w1 [F, D]
                int e = s[0];
                int dd = s[1];
                int f = glu ? s[2] / 2 : s[2];
                for (int j = 0; j < e; j++) {
                    int at = j * dd * s[2];
                    String x = to + "block_sparse_moe.experts." + j + ".";
                    st.add(x + "w1.weight", columns(v, at, dd, s[2], 0, f), f, dd);
                    if (glu) {
                        st.add(x + "w3.weight", columns(v, at, dd, s[2], f, f), f, dd);
                    }
                }
            }
            case "moe.experts.w2" -> {
                // [E, F, D] → per expert j: w2 [D, F]
                int e = s[0];
                for (int j = 0; j < e; j++) {
                    st.add(to + "block_sparse_moe.experts." + j + ".w2.weight",
                            columns(v, j * s[1] * s[2], s[1], s[2], 0, s[2]), s[2], s[1]);
                }
            }
            case "moe.shared.w1" -> {
                // [1, D, 2F'] → gate_proj [F', D], up_proj [F', D] (DeepSeekMoE's shared experts, as one FFN);
                // GELU's [1, D, F'] → up_proj [F', D]
                int f = glu ? s[2] / 2 : s[2];
                if (glu) {
                    st.add(to + "block_sparse_moe.shared_experts.gate_proj.weight", columns(v, 0, s[1], s[2], 0, f), f,
                            s[1]);
                }
                st.add(to + "block_sparse_moe.shared_experts.up_proj.weight", columns(v, 0, s[1], s[2], glu ? f : 0, f),
                        f, s[1]);
            }
            case "moe.shared.w2" -> st.add(to + "block_sparse_moe.shared_experts.down_proj.weight",
                    columns(v, 0, s[1], s[2], 0, s[2]), s[2], s[1]);  // [1, F', D] → [D, F']
            default -> throw unknown(name);
        }
    }

    private static IllegalStateException unknown(String name) {
        return ModelExport.unknown(name, "LmExport (and the twin, scripts/roundhouse_twin.py)");
    }

    /** config.json: the architecture in Hugging Face's terms, plus what Mixtral lacks (with notes). */
    static ObjectNode config(LmSpec spec) {
        ModelSpec m = spec.moe();
        ObjectNode c = ModelExport.JSON.createObjectNode();
        c.putArray("architectures").add("RoundhouseMoeForCausalLM");
        c.put("model_type", "roundhouse_moe");
        c.put("vocab_size", spec.vocabulary());
        c.put("hidden_size", m.dim());
        c.put("num_hidden_layers", m.blocks());
        c.put("num_attention_heads", spec.heads());
        c.put("num_key_value_heads", spec.kvHeads());
        c.put("head_dim", spec.headDim());
        c.put("intermediate_size", m.expertHidden());
        c.put("dense_intermediate_size", spec.denseHidden());
        c.put("num_local_experts", m.experts());
        c.put("num_experts_per_tok", m.topK());
        c.put("n_shared_experts", m.sharedExperts());
        ArrayNode moe = c.putArray("moe_layers");
        for (int b = 0; b < m.blocks(); b++) {
            if (spec.isMoe(b)) {
                moe.add(b);
            }
        }
        ModelExport.router(c, m);
        boolean glu = m.activation() == Activation.SWIGLU;
        c.put("hidden_act", glu ? "silu" : "gelu_pytorch_tanh");
        c.put("expert_glu", glu);
        c.put("norm_type", m.norm().name().toLowerCase(Locale.ROOT));
        c.put("rms_norm_eps", (double) NormLayer.EPS);
        c.put("rope_theta", spec.ropeTheta());
        c.put("rope_style", "rotate_half");
        c.put("max_position_embeddings", spec.seqLen());
        c.put("tie_word_embeddings", spec.tiedEmbeddings());
        c.put("attention_output_gate", spec.attentionGate());
        c.put("attention_bias", false);
        c.put("torch_dtype", "float32");
        c.put("tokenizer", "bytes");
        ObjectNode notes = c.putObject("notes");
        notes.put("tokenizer", "ids are byte values 0..255 of UTF-8 text; no special tokens");
        notes.put("o_gate", "self_attn.o_gate.weight [H*head_dim, hidden] (present when attention_output_gate): "
                + "o = o * sigmoid(x @ o_gate.weight.T) element by element, on the heads' concatenated attention "
                + "output before o_proj, x being the input_layernorm output; Mixtral has no such projection");
        notes.put("router_gate", ModelExport.routerNote(m));
        notes.put("router", "block_sparse_moe.gate sees the post_attention_layernorm output, as in Mixtral");
        notes.put("experts", "expert_glu: w2(silu(w1(x)) * w3(x)) (Mixtral's); otherwise w2(gelu(w1(x), "
                + "approximate='tanh')), no w3; no biases");
        notes.put("shared_experts", "with n_shared_experts > 0: block_sparse_moe.shared_experts, one expert of width "
                + "n_shared_experts * intermediate_size that every token goes through, added to the routed experts' "
                + "output with weight 1 (DeepSeekMoE): down_proj(silu(gate_proj(x)) * up_proj(x)), or without "
                + "expert_glu down_proj(gelu(up_proj(x), approximate='tanh'))");
        notes.put("moe_layers", "blocks not listed are dense: mlp.gate_proj/up_proj/down_proj (Llama's names), "
                + "down(silu(gate(x)) * up(x)), of width dense_intermediate_size");
        notes.put("rope", "inv_freq[i] = rope_theta^(-2i/head_dim), i < head_dim/2; dimension i pairs with i + "
                + "head_dim/2 (rotate_half); positions 0..T-1 in each sequence");
        notes.put("norm", "norm_type rmsnorm: y = x / sqrt(mean(x^2) + rms_norm_eps) * weight; layernorm: y = (x - "
                + "mean(x)) / sqrt(var(x) + rms_norm_eps) * weight + bias (the population variance; the same eps)");
        return c;
    }
}
