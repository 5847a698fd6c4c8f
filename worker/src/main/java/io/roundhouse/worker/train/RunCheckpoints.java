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
final class RunCheckpoints {
    private final JobConfig config;
    private final WorkerGroup group;
    private final ParamStore params;
    private final Function<String, CheckpointStore> stores;
    private final MetricsSink owner;  // the job's owner, who may commit checkpoints itself; or null
    private final Map<String, String> model = new LinkedHashMap<>();
    private final int every;
    private final String root;
    private String resumedFrom;
    private List<String> resumeChanges = List.of();

    /**
     * @param rank0RunDir rank 0's run directory (null elsewhere, or when it is not on this machine)
     * @param stores      the checkpoint store for a folder named in the config
     * @param owner       rank 0's remote sink, which may commit checkpoints itself; or null
     */
    RunCheckpoints(JobConfig config, WorkerGroup group, ParamStore params, int inputs, int classes, Path rank0RunDir,
                   Function<String, CheckpointStore> stores, MetricsSink owner) {
        this.config = config;
        this.group = group;
        this.params = params;
        this.stores = stores;
        this.owner = owner;
        for (ConfigKey<?> k : List.of(MODEL_DIM, MODEL_BLOCKS, MODEL_EXPERTS, MODEL_EXPERT_HIDDEN, MODEL_ACTIVATION,
                MODEL_NORM)) {
            model.put(k.name(), config.asMap().get(k.name()));
        }
        model.put("inputs", String.valueOf(inputs));
        model.put("classes", String.valueOf(classes));
        // A Self-Tuning Network adds parameters (responses, the hyperparameters' state).
        List<String> tuned = config.get(ConfigKeys.STN_TUNE);
        model.put("stn", tuned.isEmpty() ? "" : String.join(",", tuned) + " on " + String.join(",",
                config.get(ConfigKeys.STN_LAYERS)));
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

    /** Whether checkpoints have somewhere to go (for a checkpoint the job's owner asks for). */
    boolean possible() {
        return !root.isEmpty();
    }

    boolean due(int step, int total) {
        return every > 0 && (step % every == 0 || step == total);
    }

    String save(int step, int adamSteps) throws IOException {
        return checkpointer(root).save(step, adamSteps);
    }

    /** Loads {@code train.resume} if set; returns the step to continue from (0: fresh). */
    int resume(AdamW opt) throws IOException {
        String where = config.get(TRAIN_RESUME);
        if (where.isEmpty()) {
            return 0;
        }
        String trimmed = where.endsWith("/") ? where.substring(0, where.length() - 1) : where;
        String storeRoot;
        String folder;
        if (stores.apply(trimmed).exists("manifest.json")) {
            int slash = trimmed.lastIndexOf('/');
            storeRoot = slash < 0 ? "." : trimmed.substring(0, slash);
            folder = trimmed.substring(slash + 1);
        } else {
            storeRoot = trimmed;
            folder = Checkpointer.latestComplete(stores.apply(trimmed));
            if (folder == null) {
                throw new CheckpointException("train.resume = " + where + ": no complete checkpoint there (a "
                        + "complete one is a step-NNNNNNNN folder with a manifest.json); check the path");
            }
        }
        Checkpointer.Restored r = checkpointer(storeRoot).load(folder);
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
        return c.recording(Map.of(MODEL_PRECISION.name(), config.asMap().get(MODEL_PRECISION.name())));
    }
}
