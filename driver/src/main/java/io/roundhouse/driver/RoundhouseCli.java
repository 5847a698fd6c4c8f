package io.roundhouse.driver;

import io.roundhouse.comms.CommsException;
import io.roundhouse.driver.bench.BenchCommand;
import io.roundhouse.worker.config.ConfigException;
import io.roundhouse.worker.data.DataException;
import java.io.PrintWriter;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code roundhouse} command: {@code train}, {@code config}, {@code bench}. */
@Command(name = "roundhouse", mixinStandardHelpOptions = true, version = "roundhouse 0.1.0",
        description = "Train Mixture-of-Experts models: one process, or W worker JVMs on this host (Spark comes next).",
        subcommands = {TrainCommand.class, SparkCommand.class, WorkerCommand.class, ConfigCommand.class, BenchCommand.class})
public final class RoundhouseCli {

    /** Exit code for a job that cannot run as configured (bad config, data, output folder). */
    public static final int EXIT_USAGE = 2;

    /** Held so the JUL logger (weakly referenced by its manager) keeps its level. */
    private static final java.util.logging.Logger NETLIB_LOG = java.util.logging.Logger.getLogger("dev.ludovic.netlib");

    public static void main(String[] args) {
        // netlib announces its BLAS through java.util.logging; Blas logs the same fact through SLF4J.
        NETLIB_LOG.setLevel(java.util.logging.Level.WARNING);
        System.exit(run(args, new PrintWriter(System.out, true), new PrintWriter(System.err, true)));
    }

    /** Runs the command line and returns the exit code (used by tests; never exits the JVM). */
    public static int run(String[] args, PrintWriter out, PrintWriter err) {
        CommandLine cli = new CommandLine(new RoundhouseCli());
        cli.setOut(out);
        cli.setErr(err);
        cli.setExecutionExceptionHandler((ex, commandLine, parseResult) -> {
            if (ex instanceof ConfigException || ex instanceof DataException || ex instanceof IllegalArgumentException
                    || ex instanceof UnsupportedOperationException) {
                err.println("error: " + ex.getMessage());
                return EXIT_USAGE;
            }
            if (ex instanceof CommsException) {
                err.println("error: " + ex.getMessage());
                return 1;
            }
            throw ex;
        });
        try {
            return cli.execute(args);
        } finally {
            out.flush();
            err.flush();
        }
    }
}
