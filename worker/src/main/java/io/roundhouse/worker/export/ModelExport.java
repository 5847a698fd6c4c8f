package io.roundhouse.worker.export;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.roundhouse.kernels.Backend;
import io.roundhouse.worker.UserException;
import io.roundhouse.worker.checkpoint.CheckpointStore;
import io.roundhouse.worker.model.Model;
import io.roundhouse.worker.model.ModelSpec;
import io.roundhouse.worker.model.MoeClassifier;
import io.roundhouse.worker.model.MoeTransformer;
import io.roundhouse.worker.model.RouterSpec;
import io.roundhouse.worker.train.ModelCheckpoint;
import io.roundhouse.worker.train.RunFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * A model as {@value #WEIGHTS} + {@value #CONFIG}, files PyTorch code reads: the one entry for
 * {@code roundhouse export} and for the export a run leaves in {@code <runDir>/}{@value #RUN_FOLDER}.
 * It dispatches on the kind of model to {@link LmExport} (Mixtral's names) or
 * {@link ClassifierExport} (the classifier's own), and holds what they share: the output folder's
 * checks, the writing, and the layout changes (our linear weights are [in, out], PyTorch's
 * {@code Linear.weight} is [out, in]).
 */
public final class ModelExport {
    public static final String WEIGHTS = "model.safetensors";
    public static final String CONFIG = "config.json";
    /** The folder of a run directory that holds the run's export. */
    public static final String RUN_FOLDER = "export";

    static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private ModelExport() {
    }

    /**
     * Loads the model of {@code checkpoint} (a step folder, or a folder of them: the latest
     * complete one), whatever its kind, and writes it into {@code out}, which is created; refused
     * before loading when {@code out} already holds an export.
     */
    public static void run(Backend be, String checkpoint, Function<String, CheckpointStore> stores, Path out) {
        checkOutput(out);
        ModelCheckpoint c = ModelCheckpoint.open(checkpoint, stores);
        Model model = switch (c.kind()) {
            case LANGUAGE_MODEL -> c.languageModel(be, 1, "(export)");
            case CLASSIFIER -> c.classifier(be, 1, "(export)");
            case NINFORMER -> c.imageModel(be, 1, "(export)");
        };
        write(model, out);
    }

    /** Writes {@code model} into {@code out} (created). */
    public static void write(Model model, Path out) {
        RouterSpec.Kind router = model.spec().router().kind();
        if (router == RouterSpec.Kind.DENSE_TO_SPARSE || router == RouterSpec.Kind.EXPERT_CHOICE) {
            throw new UserException(UserException.USAGE, "model.router=" + router.configName() + " has no PyTorch "
                    + "export yet (the twins route by softmax or sigmoid top-k); train with another router to export");
        }
        if (model.spec().router().preGating()) {
            throw new UserException(UserException.USAGE, "model.preGating=on has no PyTorch export yet (the twins "
                    + "route each layer from its own input); train without it to export");
        }
        if (model instanceof MoeTransformer lm) {
            LmExport.write(lm, out);
        } else if (model instanceof MoeClassifier classifier) {
            ClassifierExport.write(classifier, out);
        } else if (model instanceof io.roundhouse.worker.model.Ninformer ninformer) {
            NinformerExport.write(ninformer, out);
        } else {
            throw new UserException(UserException.USAGE, "a " + model.getClass().getSimpleName() + " has no PyTorch "
                    + "export yet (LmExport, ClassifierExport and NinformerExport export the language model, the MoE-MLP and "
                    + "the NiNformer)");
        }
    }

    /**
     * A finished run's export into {@code runDir/}{@value #RUN_FOLDER} by {@code write}, and the
     * line that says where it is, or why there is none: a model whose export is refused (a
     * {@link UserException}) does not fail the run that trained it.
     */
    public static String forRun(Path runDir, Consumer<Path> write) {
        Path out = runDir.resolve(RUN_FOLDER);
        try {
            write.accept(out);
        } catch (UserException e) {
            return "no export: " + e.getMessage();
        }
        return "export: " + out.resolve(WEIGHTS) + " and " + CONFIG + " (PyTorch reads them; see docs/architecture.md)";
    }

    /** Refuses an output folder that already holds {@value #WEIGHTS}, or is a file. */
    static void checkOutput(Path out) {
        if (Files.exists(out.resolve(WEIGHTS))) {
            throw new UserException(UserException.USAGE, "output folder " + out + " already holds " + WEIGHTS
                    + "; choose another --out, or delete that folder's export first");
        }
        if (Files.exists(out) && !Files.isDirectory(out)) {
            throw new UserException(UserException.USAGE, "--out " + out + " is a file, not a folder; choose a folder");
        }
    }

    /** Writes {@code tensors} as {@value #WEIGHTS} and {@code config} as {@value #CONFIG} into {@code out}. */
    static void writeFiles(SafetensorsWriter tensors, ObjectNode config, Path out) {
        checkOutput(out);
        try {
            Files.createDirectories(out);
        } catch (IOException e) {
            throw UserException.cannotWrite(out, e);
        }
        tensors.write(out.resolve(WEIGHTS));
        try {
            RunFiles.writeAtomically(out.resolve(CONFIG), JSON.writeValueAsString(config) + "\n");
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException("config.json does not serialise", e);
        }
    }

    /** Whether {@code name} is a Self-Tuning Network's parameter: not part of the exported network. */
    static boolean stn(String name) {
        return name.contains(".stn.") || name.startsWith("stn.");
    }

    /** A parameter an export does not map: a bug (nothing may vanish silently), not the user's error. */
    static IllegalStateException unknown(String name, String where) {
        return new IllegalStateException("export does not know parameter " + name + ": map it in " + where
                + " or leave it out there on purpose");
    }

    /** A linear weight [in, out] as PyTorch's [out, in]. */
    static void linear(SafetensorsWriter st, String name, float[] v, int[] s) {
        st.add(name, transpose(v, s[0], s[1]), s[1], s[0]);
    }

    static float[] transpose(float[] v, int rows, int cols) {
        return columns(v, 0, rows, cols, 0, cols);
    }

    /** Columns [c0, c0 + w) of the [rows, cols] matrix at {@code v[at..]}, transposed: [w, rows]. */
    static float[] columns(float[] v, int at, int rows, int cols, int c0, int w) {
        float[] t = new float[w * rows];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < w; c++) {
                t[c * rows + r] = v[at + r * cols + c0 + c];
            }
        }
        return t;
    }

    /**
     * The router's keys of config.json: {@code scoring_func} (DeepSeek-V3's name: softmax or
     * sigmoid) and {@code router_gate}, how the chosen experts' gates are formed.
     */
    static void router(ObjectNode c, ModelSpec m) {
        boolean sigmoid = m.router().kind() == RouterSpec.Kind.SIGMOID;
        c.put("scoring_func", sigmoid ? "sigmoid" : "softmax");
        c.put("router_gate", sigmoid ? "sigmoid_topk_norm" : m.gate().name().toLowerCase(Locale.ROOT));
    }

    /** The note on {@link #router}'s {@code router_gate}: the formula. */
    static String routerNote(ModelSpec m) {
        if (m.router().kind() == RouterSpec.Kind.SIGMOID) {
            return "sigmoid_topk_norm (DeepSeek-V3): s = sigmoid(logits); S = the num_experts_per_tok largest of "
                    + "s + gate.e_score_correction_bias (ties to the lower expert; the bias only selects); "
                    + "gates = s[S] / sum(s[S])";
        }
        return switch (m.gate()) {
            case TOPK_SOFTMAX -> "topk_softmax: gates = softmax(logits[S]) (Mixtral's; S the num_experts_per_tok "
                    + "largest logits, ties to the lower expert)";
            case SOFTMAX_TOPK -> "softmax_topk: gates = softmax(logits)[S], not renormalised (Switch/GShard)";
            case SOFTMAX_TOPK_RENORM -> "softmax_topk_renorm: p = softmax(logits); gates = p[S] / sum(p[S])";
        };
    }
}
