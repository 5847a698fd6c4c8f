package io.roundhouse.worker.train;

import io.roundhouse.kernels.Backend;
import io.roundhouse.worker.checkpoint.CheckpointException;
import io.roundhouse.worker.checkpoint.CheckpointStore;
import io.roundhouse.worker.checkpoint.Checkpointer;
import io.roundhouse.worker.config.ConfigKey;
import io.roundhouse.worker.config.ConfigKeys;
import io.roundhouse.worker.config.JobConfig;
import io.roundhouse.worker.model.Hyper;
import io.roundhouse.worker.model.LmSpec;
import io.roundhouse.worker.model.MoeTransformer;
import io.roundhouse.worker.model.StnSpec;
import io.roundhouse.worker.parallel.WorkerGroup;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;

/**
 * The language model of a checkpoint, rebuilt in one process from the manifest's model settings
 * and loaded (every expert of every MoE block hosted locally): what {@code generate} and
 * {@code export} start from.
 */
public final class LmCheckpoint {
    private LmCheckpoint() {
    }

    /**
     * @param checkpoint   a step folder, or a folder of them (the latest complete one)
     * @param maxSeqs      sequences one forward of the model takes at most
     * @param ifClassifier the end of the refusal when the checkpoint is a classifier's
     */
    public static MoeTransformer load(Backend be, String checkpoint, Function<String, CheckpointStore> stores,
                                      int maxSeqs, String ifClassifier) {
        String[] at = RunCheckpoints.locate("--checkpoint", checkpoint, stores);
        CheckpointStore store = stores.apply(at[0]);
        Map<String, String> saved = Checkpointer.savedModel(store, at[1]);
        if (!"lm".equals(saved.get(ConfigKeys.MODEL_KIND.name()))) {
            throw new CheckpointException("checkpoint " + store.describe(at[1]) + " is not a language model's (it was "
                    + "written by the classifier); " + ifClassifier);
        }
        Map<String, String> settings = new HashMap<>();
        for (Map.Entry<String, String> e : saved.entrySet()) {
            ConfigKey<?> k = ConfigKeys.byName(e.getKey());
            if (k != null) {
                settings.put(e.getKey(), e.getValue());
            }
        }
        JobConfig config = JobConfig.of(settings);
        // A Self-Tuning Network's parameters are part of the checkpoint ("tuned on layers"); generation
        // and export use the plain network (the responses are off outside a hyper step), so only their
        // shapes count.
        String stn = saved.getOrDefault("stn", "");
        StnSpec stnSpec = StnSpec.NONE;
        if (!stn.isEmpty()) {
            String[] tunedOn = stn.split(" on ", 2);
            stnSpec = new StnSpec(Arrays.stream(tunedOn[0].split(",")).map(Hyper::byId).toList(),
                    Set.of(tunedOn.length > 1 ? tunedOn[1].split(",") : new String[0]));
        }
        LmSpec spec = LmSpec.from(config, Integer.parseInt(saved.get("vocabulary"))).withStn(stnSpec);
        MoeTransformer model = MoeTransformer.local(be, spec, 0, maxSeqs);
        Map<String, String> manifest = new LinkedHashMap<>(RunCheckpoints.modelOf(config,
                Map.of("vocabulary", saved.get("vocabulary"))));
        manifest.put("stn", stn);
        new Checkpointer(store, WorkerGroup.single(spec.moe().experts()), model.params(), manifest).load(at[1]);
        return model;
    }
}
