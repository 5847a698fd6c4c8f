package io.roundhouse.worker.train;

import io.roundhouse.kernels.Backend;
import io.roundhouse.worker.config.ConfigKey;
import io.roundhouse.worker.config.ConfigKeys;
import io.roundhouse.worker.config.JobConfig;
import io.roundhouse.worker.data.ByteTokenizer;
import io.roundhouse.worker.data.DataSplits;
import io.roundhouse.worker.data.FashionMnist;
import io.roundhouse.worker.data.TextCorpus;
import io.roundhouse.worker.model.ExpertExchange;
import io.roundhouse.worker.model.LmSpec;
import io.roundhouse.worker.model.Model;
import io.roundhouse.worker.model.ModelSpec;
import io.roundhouse.worker.model.MoeClassifier;
import io.roundhouse.worker.model.MoeTransformer;
import io.roundhouse.worker.model.Ninformer;
import io.roundhouse.worker.model.NinformerSpec;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * The things that differ between the kinds of model ({@code model.kind}): where the data comes
 * from and which model is built on it. Everything else (the step loop, evaluation, checkpoints,
 * metrics, the Spark job) goes through {@link Model} and {@link io.roundhouse.worker.data.Examples}.
 */
public enum ModelKind {
    /** The MoE-MLP classifier on (Fashion-)MNIST images. */
    CLASSIFIER,
    /** The MoE transformer language model on bytes of text. */
    LANGUAGE_MODEL,
    /** The NiNformer image classifier: patches, gated MLP-Mixer blocks, MoE or dense FFNs. */
    NINFORMER;

    /** Keys only the NiNformer reads. */
    private static final List<IgnoredKey> PATCH_KEYS = List.of(
            ninformerOnly(ConfigKeys.MODEL_PATCH_SIZE), ninformerOnly(ConfigKeys.MODEL_TOKEN_HIDDEN),
            ninformerOnly(ConfigKeys.MODEL_CHANNEL_HIDDEN));

    /** Keys the classifier does not read. */
    private static final List<IgnoredKey> CLASSIFIER_IGNORES = List.of(
            lmOnly(ConfigKeys.MODEL_HEADS, "the classifier has no attention"),
            lmOnly(ConfigKeys.MODEL_KV_HEADS, "the classifier has no attention"),
            lmOnly(ConfigKeys.MODEL_ROPE_THETA, "the classifier has no attention"),
            new IgnoredKey(ConfigKeys.MODEL_MOE_EVERY, "every block of the classifier is an MoE block; remove it, "
                    + "or set model.kind=lm or ninformer, whose blocks may be dense"),
            new IgnoredKey(ConfigKeys.MODEL_DENSE_HIDDEN, "the classifier has no dense blocks; remove it, or set "
                    + "model.kind=lm or ninformer, whose blocks may be dense"),
            lmOnly(ConfigKeys.MODEL_ATTENTION_GATE, "the classifier has no attention"),
            lmOnly(ConfigKeys.MODEL_DROPOUT_ATTENTION, "the classifier has no attention"),
            lmOnly(ConfigKeys.MODEL_TIE_EMBEDDINGS, "the classifier's input is pixels, not a token table to tie"),
            new IgnoredKey(ConfigKeys.DATA_TEXT, "the classifier reads images from data.dir; remove it, or set "
                    + "model.kind=lm to train the language model on the text"),
            new IgnoredKey(ConfigKeys.DATA_SEQ_LEN, "the classifier's examples are images, not token sequences; "
                    + "remove it"),
            new IgnoredKey(ConfigKeys.DATA_VALIDATION_FRACTION, "the classifier holds out data.validationExamples "
                    + "images; remove it, and set data.validationExamples instead"),
            PATCH_KEYS.get(0), PATCH_KEYS.get(1), PATCH_KEYS.get(2));

    /** Keys the NiNformer does not read. */
    private static final List<IgnoredKey> NINFORMER_IGNORES = List.of(
            lmOnly(ConfigKeys.MODEL_HEADS, "the NiNformer mixes its patches with MLPs, not attention"),
            lmOnly(ConfigKeys.MODEL_KV_HEADS, "the NiNformer has no attention"),
            lmOnly(ConfigKeys.MODEL_ROPE_THETA, "the NiNformer has no attention"),
            lmOnly(ConfigKeys.MODEL_ATTENTION_GATE, "the NiNformer has no attention (its gate is the gating unit's, "
                    + "always on)"),
            lmOnly(ConfigKeys.MODEL_DROPOUT_ATTENTION, "the NiNformer has no attention"),
            lmOnly(ConfigKeys.MODEL_TIE_EMBEDDINGS, "the NiNformer's input is pixels, not a token table to tie"),
            new IgnoredKey(ConfigKeys.DATA_TEXT, "the NiNformer reads images from data.dir; remove it"),
            new IgnoredKey(ConfigKeys.DATA_SEQ_LEN, "the NiNformer's examples are images; remove it"),
            new IgnoredKey(ConfigKeys.DATA_VALIDATION_FRACTION, "the NiNformer holds out data.validationExamples "
                    + "images; remove it, and set data.validationExamples instead"));

    /** Keys the language model does not read. */
    private static final List<IgnoredKey> LANGUAGE_MODEL_IGNORES = List.of(
            new IgnoredKey(ConfigKeys.MODEL_DROPOUT_INPUT, "the language model has no input dropout; remove it "
                    + "(its rates are model.dropout.block and model.dropout.attention)"),
            new IgnoredKey(ConfigKeys.AUGMENT_SHIFT, "it shifts images, and the language model reads text; "
                    + "remove it"),
            new IgnoredKey(ConfigKeys.DATA_DIR, "the language model reads data.text; remove it, and name the "
                    + "text with data.text"),
            new IgnoredKey(ConfigKeys.DATA_FORMAT, "the language model reads data.text (plain text); remove it"),
            new IgnoredKey(ConfigKeys.DATA_VALIDATION_EXAMPLES, "the language model holds out the last "
                    + "data.validationFraction of the text; remove it, and set data.validationFraction instead"),
            new IgnoredKey(ConfigKeys.DATA_DISTRIBUTION, "every language-model worker reads the whole text; "
                    + "remove it"),
            new IgnoredKey(ConfigKeys.ADV_TRAINING, "adversarial training attacks images, and the language model "
                    + "reads text; remove it, or train model.kind=classifier or ninformer"),
            PATCH_KEYS.get(0), PATCH_KEYS.get(1), PATCH_KEYS.get(2));

    public static ModelKind of(JobConfig config) {
        return byConfigName(config.get(ConfigKeys.MODEL_KIND));
    }

    /** The kind whose {@code model.kind} value is {@code name} (a checkpoint's records: absent is the classifier). */
    public static ModelKind byConfigName(String name) {
        return "lm".equals(name) ? LANGUAGE_MODEL : "ninformer".equals(name) ? NINFORMER : CLASSIFIER;
    }

    /** This kind's {@code model.kind} value. */
    public String configName() {
        return switch (this) {
            case CLASSIFIER -> "classifier";
            case LANGUAGE_MODEL -> "lm";
            case NINFORMER -> "ninformer";
        };
    }

    /** Whether its examples are labelled images (data.dir's IDX files, or Parquet in the Spark job). */
    public boolean readsImages() {
        return this != LANGUAGE_MODEL;
    }

    /**
     * The keys this kind does not read, each with why and what to do: the trainer's preflight
     * refuses a job that sets one to other than its default, rather than run as if it were not
     * there. The one table of which key applies to which kind (every key not listed applies to
     * both).
     */
    public List<IgnoredKey> ignoredKeys() {
        return switch (this) {
            case CLASSIFIER -> CLASSIFIER_IGNORES;
            case LANGUAGE_MODEL -> LANGUAGE_MODEL_IGNORES;
            case NINFORMER -> NINFORMER_IGNORES;
        };
    }

    /**
     * A key a kind of model does not read.
     *
     * @param key    the key
     * @param reason why the kind ignores it, then what to do instead (the end of a one-line message)
     */
    public record IgnoredKey(ConfigKey<?> key, String reason) {
    }

    private static IgnoredKey lmOnly(ConfigKey<?> key, String why) {
        return new IgnoredKey(key, why + "; remove it, or set model.kind=lm to train the language model");
    }

    private static IgnoredKey ninformerOnly(ConfigKey<?> key) {
        return new IgnoredKey(key, "only the NiNformer cuts images into patches; remove it, or set "
                + "model.kind=ninformer");
    }

    /** The data read on this machine ({@code data.dir}'s IDX files, or {@code data.text}). */
    public DataSplits loadLocal(JobConfig config) {
        return switch (this) {
            case CLASSIFIER, NINFORMER -> FashionMnist.load(Path.of(config.get(ConfigKeys.DATA_DIR)));
            case LANGUAGE_MODEL -> corpus(config, TextCorpus.readLocal(config.get(ConfigKeys.DATA_TEXT)));
        };
    }

    /**
     * A language model's splits of {@code text} (read wherever it lives); with a Self-Tuning Network,
     * a tuning split as large as the validation split comes out of training, just before it.
     */
    public static DataSplits corpus(JobConfig config, byte[] text) {
        double validation = config.get(ConfigKeys.DATA_VALIDATION_FRACTION);
        return TextCorpus.splits(text, new ByteTokenizer(), config.get(ConfigKeys.DATA_SEQ_LEN), validation,
                config.get(ConfigKeys.STN_TUNE).isEmpty() ? 0 : validation, config.get(ConfigKeys.DATA_TEXT));
    }

    /**
     * The model for data of {@code shape} ({@link io.roundhouse.worker.data.Examples#shape()}), for at
     * most {@code maxBatch} examples per forward, with MoE block b's expert exchange from
     * {@code exchanges(b, rowsOut)}.
     */
    public Model build(JobConfig config, Backend be, Map<String, String> shape, long seed, int maxBatch,
                       Exchanges exchanges) {
        return switch (this) {
            case CLASSIFIER -> {
                ModelSpec spec = ModelSpec.from(config, Integer.parseInt(shape.get("inputs")),
                        Integer.parseInt(shape.get("classes")));
                yield new MoeClassifier(be, spec, seed, maxBatch,
                        b -> exchanges.exchange(b, maxBatch * spec.topK()));
            }
            case LANGUAGE_MODEL -> {
                LmSpec spec = LmSpec.from(config, Integer.parseInt(shape.get("vocabulary")));
                int rows = maxBatch * spec.seqLen();
                yield new MoeTransformer(be, spec, seed, maxBatch, b -> exchanges.exchange(b, rows * spec.moe().topK()));
            }
            case NINFORMER -> {
                NinformerSpec spec = NinformerSpec.from(config, Integer.parseInt(shape.get("inputs")),
                        Integer.parseInt(shape.get("classes")));
                int rows = maxBatch * spec.patches();
                yield new Ninformer(be, spec, seed, maxBatch, b -> exchanges.exchange(b, rows * spec.moe().topK()));
            }
        };
    }

    /** An MoE block's exchange for at most {@code maxRowsOut} token copies sent per forward. */
    @FunctionalInterface
    public interface Exchanges {
        ExpertExchange exchange(int block, int maxRowsOut);

        /** Single process: every block hosts all experts. */
        static Exchanges local(int experts) {
            return (b, rows) -> new io.roundhouse.worker.model.LocalExchange(experts);
        }
    }

    /**
     * Evaluation batch in examples: a language model's and a NiNformer's at most the training batch
     * (their examples are T tokens or P patches each, and every buffer is sized for the larger batch).
     */
    public int evalBatch(JobConfig config) {
        int e = config.get(ConfigKeys.TRAIN_EVAL_BATCH_SIZE);
        return this == CLASSIFIER ? e : Math.min(e, config.get(ConfigKeys.TRAIN_BATCH_SIZE));
    }
}
