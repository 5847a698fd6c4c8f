package io.roundhouse.driver;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.Backends;
import io.roundhouse.worker.checkpoint.CheckpointStore;
import io.roundhouse.worker.config.JobConfig;
import io.roundhouse.worker.exit.EarlyExitRun;
import io.roundhouse.worker.model.BackendCheck;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code roundhouse early-exit}: JEI-DNN exits on a trained NiNformer, over a sweep of λ. */
@Command(name = "early-exit", mixinStandardHelpOptions = true,
        description = "Train JEI-DNN early exits (a linear head and a gate over its max probability, entropy and "
                + "margin after intermediate blocks) on a NiNformer checkpoint, the model frozen, for each exit.lambda "
                + "of the config; reports test accuracy against average compute per image (FLOPs and wall time) and "
                + "writes a run directory with the curve in its report.html.")
final class EarlyExitCommand implements Callable<Integer> {
    @Option(names = "--checkpoint", required = true, paramLabel = "DIR",
            description = "a NiNformer checkpoint step folder, or a folder of them (the latest complete one is taken)")
    String checkpoint;

    @Option(names = "--backend", defaultValue = "cpu", description = "cpu, cuda or auto (default: ${DEFAULT-VALUE})")
    String backend;

    @Mixin
    ConfigOptions options;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        JobConfig config = options.resolve();
        EarlyExitRun.check(config);
        Backends.checkAvailable(backend);
        try (Backend be = Backends.create(backend, null, BackendCheck::differences)) {
            EarlyExitRun.run(config, be, checkpoint, CheckpointStore::local,
                    new java.io.PrintStream(new WriterOutputStream(spec.commandLine().getOut()), true));
        }
        return 0;
    }
}
