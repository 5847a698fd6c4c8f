package io.roundhouse.driver;

import io.roundhouse.driver.spark.SparkJob;
import io.roundhouse.worker.config.JobConfig;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Spec;

/**
 * {@code roundhouse spark}: the job as a Spark application, W workers as one barrier stage. From
 * {@code spark-submit --class io.roundhouse.driver.RoundhouseCli roundhouse.jar spark ...} it runs
 * on that cluster; otherwise on an embedded {@code local[W]}.
 */
@Command(name = "spark", mixinStandardHelpOptions = true,
        description = "Train as a Spark application: W workers (workers=W) as the tasks of a barrier stage, "
                + "on the spark-submit master or an embedded local[W]; the driver writes the run directory.")
final class SparkCommand implements Callable<Integer> {
    @Mixin
    ConfigOptions options;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        JobConfig config = options.resolve();
        new SparkJob(config, spec.commandLine().getOut()).run();
        return 0;
    }
}
