package io.roundhouse.driver;

import io.roundhouse.comms.CommsException;
import io.roundhouse.driver.bench.BenchCommand;
import io.roundhouse.kernels.BackendException;
import io.roundhouse.worker.UserException;
import java.io.PrintWriter;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The {@code roundhouse} command: {@code train}, {@code generate}, {@code export}, {@code report}, {@code spark}, {@code config}, {@code bench}.
 *
 * <p>Errors: the user's own (a {@link UserException}: config, data, checkpoints, paths; a
 * {@link BackendException}; a {@link CommsException}: a peer or the transport failed) print one
 * line, {@code error: <what is wrong and what to do>}, and exit with 2 when the job cannot run as
 * given or 1 when it failed while running. Anything else is a bug: it prints a line saying so and
 * its stack trace, and exits with 1.
 */
@Command(name = "roundhouse", mixinStandardHelpOptions = true, version = "roundhouse 0.1.0",
        description = "Train Mixture-of-Experts models: one process, W worker JVMs on this host, or a Spark application.",
        subcommands = {TrainCommand.class, GenerateCommand.class, EvalCommand.class, EarlyExitCommand.class, ExportCommand.class, ReportCommand.class, SparkCommand.class, WorkerCommand.class, ConfigCommand.class, BenchCommand.class})
public final class RoundhouseCli {

    /** Exit code for a job that cannot run as given (bad config, data, checkpoint, output folder). */
    public static final int EXIT_USAGE = UserException.USAGE;
    /** Exit code for a job that failed while running, and for a bug. */
    public static final int EXIT_FAILURE = UserException.RUNTIME;

    /** The first line printed for a bug (followed by its trace). */
    static final String BUG_HEADLINE = "error: an internal error, which is a bug in Roundhouse; please report it "
            + "with this trace:";

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
        cli.setParameterExceptionHandler((ex, a) -> {
            if (ex instanceof CommandLine.UnmatchedArgumentException u && ex.getCommandLine() == cli
                    && !u.getUnmatched().isEmpty() && !u.getUnmatched().get(0).startsWith("-")) {
                err.println("error: unknown command '" + u.getUnmatched().get(0) + "'; the commands are "
                        + String.join(", ", cli.getSubcommands().keySet()));
                err.println("  see 'roundhouse --help'");
                return EXIT_USAGE;
            }
            err.println("error: " + ex.getMessage());
            err.println("  see '" + ex.getCommandLine().getCommandSpec().qualifiedName() + " --help'");
            return EXIT_USAGE;
        });
        cli.setExecutionExceptionHandler((ex, commandLine, parseResult) -> report(ex, err));
        try {
            return cli.execute(args);
        } finally {
            out.flush();
            err.flush();
        }
    }

    /**
     * Prints {@code ex} for the person at the console and returns the exit code: the user's error
     * as its message alone, a bug with a line saying so and its trace.
     */
    static int report(Throwable ex, PrintWriter err) {
        Throwable user = userError(ex);
        if (user != null) {
            err.println("error: " + user.getMessage());
            return exitCode(user);
        }
        err.println(BUG_HEADLINE);
        ex.printStackTrace(err);
        return EXIT_FAILURE;
    }

    /**
     * The user's error behind {@code ex}, or null when it is a bug: {@code ex} itself, or a cause of
     * it (a Spark job's failure carries its task's).
     */
    public static Throwable userError(Throwable ex) {
        for (Throwable t = ex; t != null; t = t.getCause() == t ? null : t.getCause()) {
            if (isUserError(t)) {
                return t;
            }
        }
        return null;
    }

    /** Whether {@code t} itself is the user's error (one of the types above), not a bug. */
    public static boolean isUserError(Throwable t) {
        return t instanceof UserException || t instanceof BackendException || t instanceof CommsException;
    }

    /** 2 when the job cannot run as given, 1 when it failed while running. */
    public static int exitCode(Throwable userError) {
        if (userError instanceof UserException u) {
            return u.exitCode();
        }
        return userError instanceof BackendException ? EXIT_USAGE : EXIT_FAILURE;
    }
}
