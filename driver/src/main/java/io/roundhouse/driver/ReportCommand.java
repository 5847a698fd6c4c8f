package io.roundhouse.driver;

import io.roundhouse.worker.UserException;
import io.roundhouse.worker.report.RunReport;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code roundhouse report}: one run's, or several runs' overlaid, charts as one HTML file that opens offline. */
@Command(name = "report", mixinStandardHelpOptions = true,
        description = "Write a run report: one self-contained HTML page (opens offline) with the run's config and "
                + "summary and charts of loss and validation, accuracy or bits per byte, tokens/s, dropped copies, "
                + "expert load per MoE layer, time per phase and the Self-Tuning Network's hyperparameters. Several "
                + "runs overlay for comparison.")
final class ReportCommand implements Callable<Integer> {
    @Parameters(arity = "1..*", paramLabel = "RUN_DIR", description = "run folders (runs/run-..., holding metrics.jsonl)")
    List<Path> runDirs;

    @Option(names = "--out", paramLabel = "FILE",
            description = "the HTML file to write (replaced if it exists); default: RUN_DIR/report.html for one run, "
                    + "report.html in the first run's parent folder for several")
    Path out;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        Path file = out != null ? out : defaultOut(runDirs);
        if (java.nio.file.Files.isDirectory(file)) {
            throw new UserException(UserException.USAGE, "--out " + file + " is a folder; give a file, such as "
                    + file.resolve(RunReport.FILE));
        }
        Path parent = file.toAbsolutePath().getParent();
        if (parent != null && !java.nio.file.Files.isDirectory(parent)) {
            throw new UserException(UserException.USAGE, "--out " + file + ": no folder " + parent
                    + "; create it or choose a file in an existing folder");
        }
        RunReport.write(runDirs, file);
        spec.commandLine().getOut().println("wrote " + file);
        return 0;
    }

    /** One run: its own folder; several: beside them, named after none (they are peers). */
    static Path defaultOut(List<Path> runDirs) {
        if (runDirs.size() == 1) {
            return runDirs.get(0).resolve(RunReport.FILE);
        }
        Path parent = runDirs.get(0).toAbsolutePath().normalize().getParent();
        return (parent != null ? parent : Path.of(".")).resolve(RunReport.FILE);
    }
}
