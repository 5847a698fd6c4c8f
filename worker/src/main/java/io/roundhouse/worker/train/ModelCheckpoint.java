package io.roundhouse.worker.train;

import io.roundhouse.kernels.Backend;
import io.roundhouse.worker.checkpoint.CheckpointException;
import io.roundhouse.worker.checkpoint.CheckpointStore;
import io.roundhouse.worker.checkpoint.Checkpointer;
import io.roundhouse.worker.config.ConfigKey;
import io.roundhouse.worker.config.ConfigKeys;
import io.roundhouse.worker.config.JobConfig;
import io.roundhouse.worker.model.Hyper;
import io.roundhouse.worker.model.ImageModel;
import io.roundhouse.worker.model.LmSpec;
import io.roundhouse.worker.model.ModelSpec;
import io.roundhouse.worker.model.MoeClassifier;
import io.roundhouse.worker.model.MoeTransformer;
import io.roundhouse.worker.model.Ninformer;
import io.roundhouse.worker.model.NinformerSpec;
import io.roundhouse.worker.model.StnSpec;
import io.roundhouse.worker.parallel.WorkerGroup;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;

/**
 * The model of a checkpoint, rebuilt in one process from the manifest's model settings and loaded
 * (every expert of every MoE block hosted locally): what {@code generate} and {@code export} start
 * from. The manifest is read (and a folder that holds no checkpoint refused) when it is opened;
 * the model is built and loaded when asked for, as the kind the checkpoint was written by.
 */
public final class ModelCheckpoint {
    private final CheckpointStore store;
    private final String folder;
    private final Map<String, String> saved;     // the manifest's model settings
    private final Map<String, String> settings;  // the settings it recorded besides (a resume may change them)

    private ModelCheckpoint(CheckpointStore store, String folder, Map<String, String> saved,
                            Map<String, String> settings) {
        this.store = store;
        this.folder = folder;
        this.saved = saved;
        this.settings = settings;
    }

    /**
     * @param checkpoint a step folder, or a folder of them (the latest complete one)
     * @throws CheckpointException when it holds no Roundhouse checkpoint, naming the fix
     */
    public static ModelCheckpoint open(String checkpoint, Function<String, CheckpointStore> stores) {
        String[] at = RunCheckpoints.locate("--checkpoint", checkpoint, stores);
        CheckpointStore store = stores.apply(at[0]);
        return new ModelCheckpoint(store, at[1], Checkpointer.savedModel(store, at[1]),
                Checkpointer.savedSettings(store, at[1]));
    }

    /** The kind of model that wrote it. */
    public ModelKind kind() {
        return ModelKind.byConfigName(saved.get(ConfigKeys.MODEL_KIND.name()));
    }

    /** The model settings its manifest records that are configuration keys (model.kind, model.dim, …). */
    public Map<String, String> modelSettings() {
        return new java.util.TreeMap<>(modelKeys(saved));
    }

    /** The step folder, for messages. */
    public String describe() {
        return store.describe(folder);
    }

    /**
     * The language model, for at most {@code maxSeqs} sequences per forward.
     *
     * @param ifNot the end of the refusal when the checkpoint is a classifier's
     */
    public MoeTransformer languageModel(Backend be, int maxSeqs, String ifNot) {
        if (kind() != ModelKind.LANGUAGE_MODEL) {
            throw new CheckpointException("checkpoint " + describe() + " is not a language model's (it was written by "
                    + "model.kind=" + kind().configName() + "); " + ifNot);
        }
        JobConfig config = JobConfig.of(modelKeys(saved));
        // A Self-Tuning Network's parameters are part of the checkpoint ("tuned on layers"); generation
        // and export use the plain network (the responses are off outside a hyper step), so only their
        // shapes count.
        String stn = saved.getOrDefault("stn", "");
        LmSpec spec = LmSpec.from(config, Integer.parseInt(saved.get("vocabulary"))).withStn(stnSpec(stn));
        MoeTransformer model = MoeTransformer.local(be, spec, 0, maxSeqs);
        Map<String, String> manifest = new LinkedHashMap<>(RunCheckpoints.modelOf(config,
                Map.of("vocabulary", saved.get("vocabulary"))));
        manifest.put("stn", stn);
        new Checkpointer(store, WorkerGroup.single(spec.moe().experts()), model.params(), manifest).load(folder);
        return model;
    }

    /**
     * The classifier, for at most {@code maxN} examples per forward, its layers at fp32 (the
     * weights are fp32 whatever {@code model.precision} trained them).
     *
     * @param ifNot the end of the refusal when the checkpoint is a language model's
     */
    public MoeClassifier classifier(Backend be, int maxN, String ifNot) {
        if (kind() != ModelKind.CLASSIFIER) {
            throw new CheckpointException("checkpoint " + describe() + " is not the classifier's (it was written by "
                    + "model.kind=" + kind().configName() + "); " + ifNot);
        }
        // Top-k and the gate shape no parameter, so a classifier's checkpoint records them among the
        // settings a resume may change; one written before it did cannot say how the model routes.
        Map<String, String> keys = modelKeys(saved);
        for (ConfigKey<?> k : List.of(ConfigKeys.MODEL_TOP_K, ConfigKeys.MODEL_GATE)) {
            String v = settings.get(k.name());
            if (v == null) {
                throw new CheckpointException("checkpoint " + describe() + " does not record " + k.name() + " (it "
                        + "was written before checkpoints did), and the classifier's forward needs it; resume it for "
                        + "one step with this version and the model.topK and model.gate it was trained with "
                        + "(train.resume, train.maxSteps one more), then use that checkpoint");
            }
            keys.put(k.name(), v);
        }
        JobConfig config = JobConfig.of(keys);
        ModelSpec spec = ModelSpec.from(config, Integer.parseInt(saved.get("inputs")),
                Integer.parseInt(saved.get("classes"))).withStn(stnSpec(saved.getOrDefault("stn", "")))
                .withPrecision(io.roundhouse.kernels.Precision.FP32);
        MoeClassifier model = MoeClassifier.local(be, spec, 0, maxN);
        new Checkpointer(store, WorkerGroup.single(spec.experts()), model.params(), saved).load(folder);
        return model;
    }

    /**
     * The image model (the classifier or the NiNformer), for at most {@code maxN} examples per
     * forward, its layers at fp32.
     *
     * @param ifNot the end of the refusal when the checkpoint is a language model's
     */
    public ImageModel imageModel(Backend be, int maxN, String ifNot) {
        return switch (kind()) {
            case CLASSIFIER -> classifier(be, maxN, ifNot);
            case LANGUAGE_MODEL -> throw new CheckpointException("checkpoint " + describe() + " is a language model's "
                    + "(model.kind=lm), not an image model's; " + ifNot);
            case NINFORMER -> {
                NinformerSpec spec = NinformerSpec.from(JobConfig.of(modelKeys(saved)),
                        Integer.parseInt(saved.get("inputs")), Integer.parseInt(saved.get("classes")));
                // A Self-Tuning Network's parameters are part of the checkpoint; evaluation runs without them.
                spec = new NinformerSpec(spec.moe().withStn(stnSpec(saved.getOrDefault("stn", "")))
                        .withPrecision(io.roundhouse.kernels.Precision.FP32), spec.channels(),
                        spec.side(), spec.patch(), spec.tokenHidden(), spec.channelHidden(), spec.moeEvery(),
                        spec.denseHidden());
                Ninformer model = Ninformer.local(be, spec, 0, maxN);
                new Checkpointer(store, WorkerGroup.single(spec.moe().experts()), model.params(), saved).load(folder);
                yield model;
            }
        };
    }

    /** The recorded settings that are configuration keys. */
    private static Map<String, String> modelKeys(Map<String, String> recorded) {
        Map<String, String> keys = new HashMap<>();
        for (Map.Entry<String, String> e : recorded.entrySet()) {
            if (ConfigKeys.byName(e.getKey()) != null) {
                keys.put(e.getKey(), e.getValue());
            }
        }
        return keys;
    }

    /** A manifest's {@code stn} entry ("tuned,... on layer,...", or empty) as the spec that built its parameters. */
    private static StnSpec stnSpec(String stn) {
        if (stn.isEmpty()) {
            return StnSpec.NONE;
        }
        String[] tunedOn = stn.split(" on ", 2);
        return new StnSpec(Arrays.stream(tunedOn[0].split(",")).map(Hyper::byId).toList(),
                Set.of(tunedOn.length > 1 ? tunedOn[1].split(",") : new String[0]));
    }
}
