package io.roundhouse.worker.train;

import io.roundhouse.kernels.Backend;
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
import java.nio.file.Path;
import java.util.Map;

/**
 * The two things that differ between the kinds of model ({@code model.kind}): where the data comes
 * from and which model is built on it. Everything else (the step loop, evaluation, checkpoints,
 * metrics, the Spark job) goes through {@link Model} and {@link io.roundhouse.worker.data.Examples}.
 */
public enum ModelKind {
    /** The MoE-MLP classifier on (Fashion-)MNIST images. */
    CLASSIFIER,
    /** The MoE transformer language model on bytes of text. */
    LANGUAGE_MODEL;

    public static ModelKind of(JobConfig config) {
        return config.get(ConfigKeys.MODEL_KIND).equals("lm") ? LANGUAGE_MODEL : CLASSIFIER;
    }

    /** The data read on this machine ({@code data.dir}'s IDX files, or {@code data.text}). */
    public DataSplits loadLocal(JobConfig config) {
        return switch (this) {
            case CLASSIFIER -> FashionMnist.load(Path.of(config.get(ConfigKeys.DATA_DIR)));
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

    /** Evaluation batch in examples: a language model's at most the training batch (its rows are T tokens each). */
    public int evalBatch(JobConfig config) {
        int e = config.get(ConfigKeys.TRAIN_EVAL_BATCH_SIZE);
        return this == LANGUAGE_MODEL ? Math.min(e, config.get(ConfigKeys.TRAIN_BATCH_SIZE)) : e;
    }
}
