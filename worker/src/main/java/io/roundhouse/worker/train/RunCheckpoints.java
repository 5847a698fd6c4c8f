package io.roundhouse.worker.train;

import static io.roundhouse.worker.config.ConfigKeys.CHECKPOINT_DIR;
import static io.roundhouse.worker.config.ConfigKeys.CHECKPOINT_EVERY_STEPS;
import static io.roundhouse.worker.config.ConfigKeys.CHECKPOINT_KEEP;
import static io.roundhouse.worker.config.ConfigKeys.MODEL_ACTIVATION;
import static io.roundhouse.worker.config.ConfigKeys.MODEL_BLOCKS;
import static io.roundhouse.worker.config.ConfigKeys.MODEL_DIM;
import static io.roundhouse.worker.config.ConfigKeys.MODEL_EXPERTS;
import static io.roundhouse.worker.config.ConfigKeys.MODEL_EXPERT_HIDDEN;
import static io.roundhouse.worker.config.ConfigKeys.MODEL_NORM;
import static io.roundhouse.worker.config.ConfigKeys.MODEL_PRECISION;
import static io.roundhouse.worker.config.ConfigKeys.TRAIN_RESUME;

import io.roundhouse.worker.checkpoint.CheckpointException;
import io.roundhouse.worker.checkpoint.CheckpointStore;
import io.roundhouse.worker.checkpoint.Checkpointer;
import io.roundhouse.worker.config.ConfigException;
import io.roundhouse.worker.config.ConfigKey;
import io.roundhouse.worker.config.ConfigKeys;
import io.roundhouse.worker.config.JobConfig;
import io.roundhouse.worker.model.ParamStore;
import io.roundhouse.worker.model.RouterSpec;
import io.roundhouse.worker.parallel.WorkerGroup;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * The run's checkpoints: where they go ({@code checkpoint.dir}, else {@code checkpoints/} in
 * rank 0's run directory, passed to every worker), when ({@code checkpoint.everySteps} and after
 * the last step), and the resume named by {@code train.resume}.
 */
public final class RunCheckpoints {
    private final JobConfig config;
    private final WorkerGroup group;
    private final ParamStore params;
    private final Function<String, CheckpointStore> stores;
    private final MetricsSink owner;  // the job's owner, who may commit checkpoints itself; or null
    private final Map<String, String> model;
    private final int every;
    private final String root;
    private String resumedFrom;
    private int lastSaved = -1;
    private List<String> resumeChanges = List.of();

    /**
     * @param rank0RunDir rank 0's run directory (null elsewhere, or when it is not on this machine)
     * @param stores      the checkpoint store for a folder named in the config
     * @param owner       rank 0's remote sink, which may commit checkpoints itself; or null
     */
    RunCheckpoints(JobConfig config, WorkerGroup group, ParamStore params, Map<String, String> shape, Path rank0RunDir,
                   Function<String, CheckpointStore> stores, MetricsSink owner) {
        this.config = config;
        this.group = group;
        this.params = params;
        this.stores = stores;
        this.owner = owner;
        this.model = modelOf(config, shape);
        this.every = config.get(CHECKPOINT_EVERY_STEPS);
        String dir = config.get(CHECKPOINT_DIR);
        if (dir.isEmpty() && group.rank() == 0 && rank0RunDir != null) {
            dir = rank0RunDir.resolve("checkpoints").toString();
        }
        this.root = group.broadcastString(dir);
        if (every > 0 && root.isEmpty()) {
            throw new ConfigException("checkpoint.everySteps = " + every + " but no checkpoint folder: the run "
                    + "directory is not on this worker's machine; set checkpoint.dir (or checkpoint.everySteps = 0)");
        }
    }

    /**
     * The settings a checkpoint records of its model, which a resume must match; a language model's
     * are every setting its architecture takes, so {@code roundhouse generate} rebuilds it from the
     * checkpoint alone.
     *
     * @param shape what the data gives the model's shape, or null before the data is read
     */
    public static Map<String, String> modelOf(JobConfig config, Map<String, String> shape) {
        Map<String, String> model = new LinkedHashMap<>();
        for (ConfigKey<?> k : List.of(MODEL_DIM, MODEL_BLOCKS, MODEL_EXPERTS, MODEL_EXPERT_HIDDEN, MODEL_ACTIVATION,
                MODEL_NORM)) {
            model.put(k.name(), config.asMap().get(k.name()));
        }
        // The router and shared experts shape parameters (the sigmoid router's bias, the shared
        // FFN) and how a rebuilt model routes (the dense-to-sparse temperature); recorded when not
        // their defaults, so the settings of a model without them read as they did before either
        // existed.
        for (ConfigKey<?> k : List.of(ConfigKeys.MODEL_ROUTER, ConfigKeys.MODEL_SHARED_EXPERTS,
                ConfigKeys.MODEL_TEMPERATURE_START, ConfigKeys.MODEL_TEMPERATURE_END, ConfigKeys.MODEL_TEMPERATURE_SHAPE,
                ConfigKeys.MODEL_ROUTER_THRESHOLD, ConfigKeys.MODEL_ROUTER_ACTIVATION, ConfigKeys.MODEL_ROUTER_BIAS,
                ConfigKeys.MODEL_PRE_GATING, ConfigKeys.MODEL_EXPERT_CHOICE_CAUSAL)) {
            if (!config.asMap().get(k.name()).equals(k.defaultText())) {
                model.put(k.name(), config.asMap().get(k.name()));
            }
        }
        RouterSpec router = RouterSpec.from(config);
        if (router.kind() == RouterSpec.Kind.DENSE_TO_SPARSE) {
            model.put(ConfigKeys.MODEL_TEMPERATURE_STEPS.name(), Long.toString(router.temperature().steps()));
        }
        if (ModelKind.of(config) == ModelKind.LANGUAGE_MODEL) {
            for (ConfigKey<?> k : List.of(ConfigKeys.MODEL_KIND, ConfigKeys.MODEL_TOP_K, ConfigKeys.MODEL_GATE,
                    ConfigKeys.MODEL_HEADS, ConfigKeys.MODEL_KV_HEADS, ConfigKeys.MODEL_ROPE_THETA,
                    ConfigKeys.MODEL_MOE_EVERY, ConfigKeys.MODEL_DENSE_HIDDEN, ConfigKeys.MODEL_ATTENTION_GATE, ConfigKeys.MODEL_TIE_EMBEDDINGS,
                    ConfigKeys.DATA_SEQ_LEN)) {
                model.put(k.name(), config.asMap().get(k.name()));
            }
        }
        if (ModelKind.of(config) == ModelKind.NINFORMER) {
            for (ConfigKey<?> k : List.of(ConfigKeys.MODEL_KIND, ConfigKeys.MODEL_TOP_K, ConfigKeys.MODEL_GATE,
                    ConfigKeys.MODEL_PATCH_SIZE, ConfigKeys.MODEL_TOKEN_HIDDEN, ConfigKeys.MODEL_CHANNEL_HIDDEN,
                    ConfigKeys.MODEL_MOE_EVERY, ConfigKeys.MODEL_DENSE_HIDDEN)) {
                model.put(k.name(), config.asMap().get(k.name()));
            }
        }
        if (shape != null) {
            shape.forEach((k, v) -> {
                if (!k.equals("seqLen")) {
                    model.put(k, v);
                }
            });
        }
        // A Self-Tuning Network adds parameters (responses, the hyperparameters' state).
        List<String> tuned = config.get(ConfigKeys.STN_TUNE);
        model.put("stn", tuned.isEmpty() ? "" : String.join(",", tuned) + " on " + String.join(",",
                config.get(ConfigKeys.STN_LAYERS)));
        return model;
    }

    /**
     * Checks the checkpoint {@code train.resume} names, if any, without loading it (see
     * {@link Checkpointer#verify}): a job's owner runs this before it starts the workers.
     *
     * @param shape   what the data gives the model's shape, or null before the data is read (then it
     *                is not compared; the workers compare it when they load the checkpoint)
     * @throws CheckpointException naming the file and what is wrong
     */
    public static void verifyResume(JobConfig config, Map<String, String> shape,
                                    Function<String, CheckpointStore> stores) {
        String where = config.get(TRAIN_RESUME);
        if (!where.isEmpty()) {
            String[] at = locate("train.resume", where, stores);
            Checkpointer.verify(stores.apply(at[0]), at[1], modelOf(config, shape));
        }
    }

    /**
     * The step folder {@code option = where} names, as {store root, folder}: {@code where} itself
     * when it holds a manifest, else the latest complete one in it.
     *
     * @param option how the user named it, for messages ("train.resume", "--checkpoint")
     */
    public static String[] locate(String option, String where, Function<String, CheckpointStore> stores) {
        String trimmed = where.endsWith("/") ? where.substring(0, where.length() - 1) : where;
        try {
            if (stores.apply(trimmed).exists("manifest.json")) {
                int slash = trimmed.lastIndexOf('/');
                return new String[] {slash < 0 ? "." : trimmed.substring(0, slash), trimmed.substring(slash + 1)};
            }
            String last = trimmed.substring(trimmed.lastIndexOf('/') + 1);
            if (last.matches("step-\\d{8}")) {
                throw new CheckpointException("checkpoint " + trimmed + " has no "
                        + "manifest.json: it is incomplete (its writer stopped before every shard was in); resume from "
                        + "an earlier one, or name their folder to take the latest complete one");
            }
            String folder = Checkpointer.latestComplete(stores.apply(trimmed));
            if (folder == null) {
                throw new CheckpointException(option + " = " + where + ": no complete checkpoint there (a "
                        + "complete one is a step-NNNNNNNN folder with a manifest.json); check the path");
            }
            return new String[] {trimmed, folder};
        } catch (IOException e) {
            throw new CheckpointException(option + " = " + where + ": cannot look for checkpoints there ("
                    + io.roundhouse.worker.UserException.reason(e) + "); check the path and its permissions", e);
        }
    }

    /** Whether checkpoints have somewhere to go (for a checkpoint the job's owner asks for). */
    boolean possible() {
        return !root.isEmpty();
    }

    boolean due(int step, int total) {
        return every > 0 && (step % every == 0 || step == total);
    }

    String save(int step, int adamSteps) throws IOException {
        String where = checkpointer(root).save(step, adamSteps);
        lastSaved = step;
        return where;
    }

    /**
     * The checkpoint this run saved of step {@code step} as a path {@link #locate} takes, or null
     * when its last one is of another step (or it saved none).
     */
    String savedOf(int step) {
        return lastSaved == step ? root + "/" + Checkpointer.folder(step) : null;
    }

    /** Loads {@code train.resume} if set; returns the step to continue from (0: fresh). */
    int resume(AdamW opt) {
        String where = config.get(TRAIN_RESUME);
        if (where.isEmpty()) {
            return 0;
        }
        String[] at = locate("train.resume", where, stores);
        Checkpointer.Restored r = checkpointer(at[0]).load(at[1]);
        opt.setSteps(r.adamSteps());
        resumedFrom = r.folder();
        resumeChanges = r.changed();
        return r.step();
    }

    String resumedFrom() {
        return resumedFrom;
    }

    /** The recorded settings that differ from the checkpoint resumed (model.precision). */
    List<String> resumeChanges() {
        return resumeChanges;
    }

    private Checkpointer checkpointer(String dir) {
        CheckpointStore store = stores.apply(dir);
        Checkpointer.Committer byOwner = owner != null ? owner.checkpointCommitter() : null;
        Checkpointer c = byOwner != null ? new Checkpointer(store, group, params, model, byOwner)
                : new Checkpointer(store, group, params, model, config.get(CHECKPOINT_KEEP));
        // Weights, moments and gradients are fp32 in either precision: a checkpoint resumes in the
        // other one, but the run then differs from an uninterrupted one, so it is recorded and said.
        // So are a classifier's top-k and gate (they shape no parameter; its export needs them).
        return c.recording(recorded(config));
    }

    /** The settings a checkpoint records that a resume may change (see {@link Checkpointer#recording}). */
    static Map<String, String> recorded(JobConfig config) {
        Map<String, String> r = new LinkedHashMap<>();
        List<ConfigKey<?>> keys = ModelKind.of(config) == ModelKind.CLASSIFIER
                ? List.of(MODEL_PRECISION, ConfigKeys.MODEL_TOP_K, ConfigKeys.MODEL_GATE) : List.of(MODEL_PRECISION);
        for (ConfigKey<?> k : keys) {
            r.put(k.name(), config.asMap().get(k.name()));
        }
        return r;
    }
}
