package io.roundhouse.worker.train;

import io.roundhouse.comms.Collectives;
import io.roundhouse.kernels.Backends;
import io.roundhouse.worker.config.ConfigException;
import io.roundhouse.worker.config.ConfigKey;
import io.roundhouse.worker.config.ConfigKeys;
import io.roundhouse.worker.data.FashionMnist;
import io.roundhouse.worker.robust.AdversarialSpec;
import java.util.Objects;

/**
 * The checks a run makes before it trains or writes anything: the configuration against itself
 * and the chosen model kind, the backend, the data folder and the folders the run writes. Each
 * fails with one line naming the key, its value and what to do.
 */
final class Preflight {
    private Preflight() {
    }

    /**
     * Everything that can be checked without the data or a group (the launcher and the Spark
     * driver run this before they start any worker).
     *
     * @param dataGiven the data comes with the trainer ({@link Trainer#withData}), not from {@code data.dir}
     */
    static void check(RunContext context, boolean dataGiven) {
        keysApply(context);
        StepTrace.of(context.config().get(ConfigKeys.TRAIN_TRACE_STEPS));  // a malformed list fails before any work
        int workers = context.workers();
        int batch = context.batchSize();
        int validation = context.validationExamples();
        boolean classifier = context.kind().readsImages();
        io.roundhouse.worker.exit.EarlyExitRun.refuseInTraining(context.config());
        if (AdversarialSpec.from(context.config()).on() && context.stn().on()) {
            throw new ConfigException("adv.training = " + context.config().get(ConfigKeys.ADV_TRAINING) + " with a "
                    + "Self-Tuning Network is not built (the hyper steps would need adversarial validation); clear "
                    + "stn.tune or set adv.training=off");
        }
        if (batch < workers) {
            throw new ConfigException("train.batchSize = " + batch + " gives some of the " + workers
                    + " workers no examples; use a batch of at least " + workers + " or fewer workers");
        }
        if (context.stn().on() && validation == 0 && classifier) {
            throw new ConfigException("stn.tune needs a validation split for its hyper steps, but "
                    + "data.validationExamples = 0; hold some out (e.g. data.validationExamples=5000) or clear stn.tune");
        }
        if (validation > 0 && validation < workers && classifier) {
            throw new ConfigException("data.validationExamples = " + validation + " gives some of the " + workers
                    + " workers nothing to evaluate; use 0 or at least " + workers);
        }
        Backends.checkAvailable(context.backend());
        if (!dataGiven && classifier && context.dataFormat().equals("idx")) {
            FashionMnist.checkFolder(context.dataDir());
        }
        RunFiles.checkFolders(context.config());
    }

    /**
     * Refuses a key set to other than its default that the chosen model kind does not read (see
     * {@link ModelKind#ignoredKeys}): an option that is accepted and ignored would let a run differ
     * silently from what its config says. A key given its default value cannot be told from one
     * left out, and passes (so a config listing every key, as the shipped one does, serves both kinds).
     */
    static void keysApply(RunContext context) {
        for (ModelKind.IgnoredKey ignored : context.kind().ignoredKeys()) {
            ConfigKey<?> key = ignored.key();
            if (!Objects.equals(context.config().get(key), key.parse(key.defaultText()))) {
                throw new ConfigException(key.name() + " = " + context.config().asMap().get(key.name())
                        + ", but model.kind=" + context.kind().configName() + " ignores it: " + ignored.reason());
            }
        }
    }

    /**
     * Refuses what only the Spark job reads, for a run of its own ({@code dataGiven}: the Spark
     * job's tasks hand the data over): Parquet data (a run of its own reads IDX files) and
     * fault injection (a failed task is retried by Spark's stage retry, which a run of its own lacks).
     */
    static void sparkOnly(RunContext context, boolean dataGiven) {
        if (dataGiven) {
            return;
        }
        if (context.kind().readsImages() && !context.dataFormat().equals("idx")) {
            throw new ConfigException("data.format = " + context.dataFormat() + " is read by the Spark job: run "
                    + "'roundhouse spark' (an embedded local[W] master is enough), or use IDX files");
        }
        int failAt = context.config().get(ConfigKeys.FAULT_FAIL_AT_STEP);
        if (failAt > 0) {
            throw new ConfigException(ConfigKeys.FAULT_FAIL_AT_STEP.name() + " = " + failAt + " is fault injection "
                    + "for the Spark job's stage retry: run 'roundhouse spark', or set it to 0");
        }
    }

    /** The group this trainer belongs to ({@code comms}; null: none) has {@code workers} members. */
    static void groupMatches(RunContext context, Collectives comms) {
        int workers = comms == null ? 1 : comms.member().size();
        if (workers != context.workers()) {
            throw new ConfigException("workers = " + context.workers() + " but this trainer is one of " + workers
                    + (comms == null ? " (started without a group: run W workers through 'roundhouse train', which "
                    + "launches them)" : "; every worker must get the same config"));
        }
    }
}
