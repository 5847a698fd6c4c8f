package io.roundhouse.worker.export;

import static io.roundhouse.worker.export.ModelExport.linear;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.roundhouse.kernels.Activation;
import io.roundhouse.worker.model.ModelSpec;
import io.roundhouse.worker.model.Ninformer;
import io.roundhouse.worker.model.NinformerSpec;
import io.roundhouse.worker.model.Param;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Exports the NiNformer as {@code model.safetensors} + {@code config.json} under names of its own
 * ({@code scripts/roundhouse_ninformer_twin.py} loads them and computes our logits):
 *
 * <pre>
 * embed.weight [D, c·p²], embed.bias [D]                      patch embedding
 * layers.{i}.norm1.weight [D] (.bias)                         the gating unit's pre-norm
 * layers.{i}.gate.weight [D, D], .bias [D]                    its gate
 * layers.{i}.mixer.norm_t.weight [D] (.bias)                  the Mixer's token-mixing pre-norm
 * layers.{i}.mixer.token.fc1.weight [Q, P], .bias [Q]         token MLP (across patches)
 * layers.{i}.mixer.token.fc2.weight [P, Q], .bias [P]
 * layers.{i}.mixer.norm_c.weight [D] (.bias)                  channel-mixing pre-norm
 * layers.{i}.mixer.channel.fc1.weight [Dc, D], .bias [Dc]     channel MLP
 * layers.{i}.mixer.channel.fc2.weight [D, Dc], .bias [D]
 * layers.{i}.norm2.weight [D] (.bias)                         the FFN's pre-norm
 * layers.{i}.moe.…                                            an MoE FFN: the classifier export's names
 * layers.{i}.ffn.fc1.weight [H, D], … fc2 [D, H]              a dense GELU FFN
 * norm.weight [D] (.bias), classifier.weight [C, D], .bias    final norm and head
 * </pre>
 */
public final class NinformerExport {
    private static final Pattern BLOCK = Pattern.compile("block(\\d+)\\.(.+)");

    private NinformerExport() {
    }

    /** Writes {@code model} as {@code model.safetensors} and {@code config.json} into {@code out} (created). */
    public static void write(Ninformer model, Path out) {
        ModelExport.checkOutput(out);
        ModelExport.writeFiles(tensors(model), config(model.ninformerSpec()), out);
    }

    static SafetensorsWriter tensors(Ninformer model) {
        Activation act = model.spec().activation();
        SafetensorsWriter st = new SafetensorsWriter().meta("format", "pt");
        for (Param p : model.params().all()) {
            String name = p.name();
            if (ModelExport.stn(name)) {
                continue;  // the Self-Tuning Network: not part of the exported network
            }
            float[] v = model.params().read(p);
            int[] s = p.value().shape();
            switch (name) {
                case "embed.w" -> linear(st, "embed.weight", v, s);
                case "embed.b" -> st.add("embed.bias", v, s[0]);
                case "final.norm.gamma" -> st.add("norm.weight", v, s[0]);
                case "final.norm.beta" -> st.add("norm.bias", v, s[0]);
                case "head.w" -> linear(st, "classifier.weight", v, s);
                case "head.b" -> st.add("classifier.bias", v, s[0]);
                default -> block(st, name, v, s, act);
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
        String rest = m.group(2);
        String mapped = rest
                .replace("mixer.normT.", "mixer.norm_t.")
                .replace("mixer.normC.", "mixer.norm_c.");
        if (mapped.endsWith(".gamma")) {
            st.add(to + mapped.substring(0, mapped.length() - 6) + ".weight", v, s[0]);
        } else if (mapped.endsWith(".beta")) {
            st.add(to + mapped.substring(0, mapped.length() - 5) + ".bias", v, s[0]);
        } else if (mapped.matches("(gate|mixer\\.token\\.fc[12]|mixer\\.channel\\.fc[12]|ffn\\.fc[12])\\.w")) {
            linear(st, to + mapped.substring(0, mapped.length() - 2) + ".weight", v, s);
        } else if (mapped.matches("(gate|mixer\\.token\\.fc[12]|mixer\\.channel\\.fc[12]|ffn\\.fc[12])\\.b")) {
            st.add(to + mapped.substring(0, mapped.length() - 2) + ".bias", v, s[0]);
        } else if (!ClassifierExport.moe(st, to, rest, v, s, act)) {
            throw unknown(name);
        }
    }

    private static IllegalStateException unknown(String name) {
        return ModelExport.unknown(name, "NinformerExport (and the twin, scripts/roundhouse_ninformer_twin.py)");
    }

    /** config.json: the classifier export's keys for the MoE parts, and the NiNformer's shapes. */
    static ObjectNode config(NinformerSpec spec) {
        ModelSpec m = spec.moe();
        ObjectNode c = ClassifierExport.config(m);
        c.remove(java.util.List.of("architectures", "model_type"));
        ObjectNode head = ModelExport.JSON.createObjectNode();
        head.putArray("architectures").add("RoundhouseNinformer");
        head.put("model_type", "roundhouse_ninformer");
        head.setAll(c);
        head.put("num_channels", spec.channels());
        head.put("image_size", spec.side());
        head.put("patch_size", spec.patch());
        head.put("num_patches", spec.patches());
        head.put("token_hidden_size", spec.tokenHidden());
        head.put("channel_hidden_size", spec.channelHidden());
        head.put("moe_every", spec.moeEvery());
        head.put("dense_intermediate_size", spec.denseHidden());
        ObjectNode notes = (ObjectNode) head.get("notes");
        notes.put("forward", "patches: x [N, c*S*S] as [N, c, S/p, p, S/p, p] -> [N, P, c*p*p] (patches row by row, "
                + "each channel-major then row-major); h = embed(patches); per layer: u = norm1(h); "
                + "h = h + gate(u) * mixer(u); h = h + ffn(norm2(h)); logits = classifier(mean over P of norm(h))");
        notes.put("mixer", "v = u + token(norm_t(u) transposed to [N, D, P]) transposed back; m = v + channel(norm_c(v));"
                + " token and channel are fc2(gelu(fc1(x), approximate='tanh'))");
        notes.put("ffn", "layer i is an MoE layer when moe_every > 0 and (i + 1) % moe_every == 0 (the classifier "
                + "export's moe), else a dense GELU MLP of dense_intermediate_size");
        return head;
    }
}
