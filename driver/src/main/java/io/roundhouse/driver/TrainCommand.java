package io.roundhouse.driver;

import io.roundhouse.worker.checkpoint.CheckpointStore;
import io.roundhouse.worker.config.ConfigKeys;
import io.roundhouse.worker.config.JobConfig;
import io.roundhouse.worker.train.RunCheckpoints;
import io.roundhouse.worker.train.Trainer;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Spec;

/**
 * {@code roundhouse train}: one worker in this process, or with {@code workers = W > 1} W worker
 * JVMs on this host through the {@link LocalLauncher}.
 */
@Command(name = "train", mixinStandardHelpOptions = true,
        description = "Train a model (model.kind: the MoE classifier, ninformer: the NiNformer, or lm: the MoE transformer "
                + "language model) and "
                + "write a run directory (config.conf, metrics.jsonl, "
                + "summary.json, checkpoints/, export/: the model for PyTorch). workers=W > 1 runs W worker JVMs "
                + "on this host.")
final class TrainCommand implements Callable<Integer> {
    @Mixin
    ConfigOptions options;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        JobConfig config = options.resolve();
        Trainer trainer = new Trainer(config, new java.io.PrintStream(new WriterOutputStream(spec.commandLine().getOut()), true));
        trainer.preflightStandalone();
        spec.commandLine().getOut().println("resolved configuration:");
        spec.commandLine().getOut().print(config.describe().lines().filter(l -> !l.startsWith("#"))
                .map(l -> "  " + l + "\n").reduce("", String::concat));
        if (config.get(ConfigKeys.WORKERS) > 1) {
            return new LocalLauncher(config, spec.commandLine().getOut(), spec.commandLine().getErr()).run();
        }
        // A checkpoint that cannot be resumed is refused before the run directory is made (the
        // launcher does the same for its workers).
        RunCheckpoints.verifyResume(config, null, CheckpointStore::local);
        trainer.run();
        return 0;
    }
}
