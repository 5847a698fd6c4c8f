package io.roundhouse.driver;

import io.roundhouse.worker.config.JobConfig;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Spec;

/** {@code roundhouse config}: validates a configuration and prints it resolved, every key documented. */
@Command(name = "config", mixinStandardHelpOptions = true,
        description = "Validate a job configuration and print every key, resolved, with its documentation.")
final class ConfigCommand implements Callable<Integer> {
    @Mixin
    ConfigOptions options;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        JobConfig config = options.resolve();
        spec.commandLine().getOut().print(config.describe());
        return 0;
    }
}
