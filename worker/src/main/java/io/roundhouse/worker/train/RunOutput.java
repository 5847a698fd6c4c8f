package io.roundhouse.worker.train;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.Backends;
import io.roundhouse.worker.UserException;
import io.roundhouse.worker.checkpoint.CheckpointStore;
import io.roundhouse.worker.export.ModelExport;
import io.roundhouse.worker.data.Examples;
import io.roundhouse.worker.model.Model;
import io.roundhouse.worker.model.ModelSpec;
import io.roundhouse.worker.model.Objective;
import io.roundhouse.worker.parallel.WorkerGroup;
import io.roundhouse.worker.report.RunReport;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * What a run shows and records: the run directory with its config, the metrics sink, the console
 * lines about the run as a whole (what is trained on what, resumes, checkpoints, evaluations, the
 * result), and the model's export. Rank 0 alone has a sink; every other rank writes no records,
 * and its console is silent (see {@link Trainer}).
 */
final class RunOutput implements AutoCloseable {
    private final PrintStream console;
    private final Path runDir;          // rank 0's run directory on this machine, or null
    private final MetricsSink metrics;  // rank 0's records, or null

    private RunOutput(PrintStream console, Path runDir, MetricsSink metrics) {
        this.console = console;
        this.runDir = runDir;
        this.metrics = metrics;
    }

    /**
     * Rank 0's output: {@code remote} when it reports to the job's owner, else a run directory
     * ({@code givenRunDir}, or a new one under {@code output.dir}) with the run's config in it.
     * Called once the model is built, so that a run that cannot start leaves no directory behind.
     */
    static RunOutput open(RunContext context, int rank, Path givenRunDir, MetricsSink remote, PrintStream console)
            throws IOException {
        Path runDir = null;
        MetricsSink sink = null;
        if (rank == 0 && remote != null) {
            sink = remote;
        } else if (rank == 0) {
            runDir = givenRunDir != null ? givenRunDir : RunFiles.createRunDir(context.outputDir());
            RunFiles.writeAtomically(runDir.resolve("config.conf"), context.config().describe());
            console.println("run directory: " + runDir);
            sink = MetricsSink.runDirectory(runDir);
        }
        return new RunOutput(console, runDir, sink);
    }

    PrintStream console() {
        return console;
    }

    /** Rank 0's run directory on this machine, or null. */
    Path runDir() {
        return runDir;
    }

    /** Whether this worker writes records (rank 0): others need not build them. */
    boolean records() {
        return metrics != null;
    }

    /** Writes {@code record} to the metrics (rank 0; a no-op elsewhere). */
    void write(Map<String, Object> record) {
        if (metrics != null) {
            metrics.write(record);
        }
    }

    /** Step {@code step}'s {@code train} record, one JSON line (see {@link StepLine}). */
    void writeStep(int step, CharSequence json) {
        if (metrics != null) {
            metrics.writeStep(step, json);
        }
    }

    /** Makes the records written so far visible (with each progress line). */
    void flush() {
        if (metrics != null) {
            metrics.flush();
        }
    }

    /** The job owner's command now (rank 0 asks; elsewhere {@link MetricsSink#NONE}). */
    int pollCommand() {
        return metrics != null ? metrics.pollCommand() : MetricsSink.NONE;
    }

    /**
     * The lines that open a run (the model, the data and the steps, the experts' and GPUs'
     * placement) and the placement record. Collective with partitioned data (the sizes are
     * summed) and always for the GPUs.
     *
     * @param shard this worker's examples of each batch
     */
    void header(Model model, WorkerGroup group, Backend be, TrainingData sets, int total, int stepsPerEpoch,
                int batch, int shard, String gpu) {
        ModelSpec spec = model.spec();
        int workers = group.size();
        int rowsPerShard = shard * model.routedRowsPerExample();
        console.printf("model: %s; gate=%s capacity=%s, %,d parameters; backend %s%n", model.describe(),
                spec.gate().name().toLowerCase(), spec.capacityFactor() > 0 ? spec.capacityFactor() + " ("
                        + spec.capacity(rowsPerShard) + " copies/expert/batch" + (workers > 1 ? " per worker" : "")
                        + ")" : "dropless", group.globalParameterCount(model.params()), be.name());
        float[] sizes = {sets.train().size(), sets.validation() == null ? 0 : sets.validation().size(),
                sets.test().size()};
        if (sets.partitioned()) {
            group.sum(sizes);  // every worker's part
        }
        console.printf("data: %d train, %d validation, %d test%s; %d steps (%d epochs of %d, batch %d%s)%n",
                Math.round(sizes[0]), Math.round(sizes[1]), Math.round(sizes[2]),
                sets.partitioned() ? " over the workers' parts" : "", total,
                (total + stepsPerEpoch - 1) / stepsPerEpoch, stepsPerEpoch, batch,
                workers > 1 ? ", " + shard + " per worker" : "");
        if (workers > 1) {
            console.print(group.placement().describe());
        }
        List<String> gpus = group.gatherStrings(gpu == null ? "" : gpu);
        if (metrics != null) {
            Map<String, Object> placement = Records.placement(group);
            if (gpus.stream().anyMatch(g -> !g.isEmpty())) {
                placement.put("gpuByWorker", gpus);
                console.println("GPUs by worker: " + gpus);
            }
            metrics.write(placement);
        }
    }

    /** The Self-Tuning Network's line: where it starts and its schedule. */
    void stn(StnTuner tuner, RunContext.Stn stn) {
        console.printf("self-tuning network: %s, responses on %s; hyper steps after step %d, %d every %d%n",
                Records.brief(tuner.lambda()), String.join(",", stn.layers()), stn.warmupSteps(), stn.validSteps(),
                stn.trainSteps());
    }

    /** The run continues at {@code firstStep} (> 0) from {@code checkpoints}' resume. */
    void resumed(int firstStep, RunCheckpoints checkpoints) {
        if (metrics != null) {
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("type", "resume");
            r.put("step", firstStep);
            r.put("from", checkpoints.resumedFrom());
            r.put("changed", checkpoints.resumeChanges());
            metrics.write(r);
        }
        console.printf("resumed at step %d from %s%n", firstStep, checkpoints.resumedFrom());
        for (String c : checkpoints.resumeChanges()) {
            console.printf("  %s: the weights are the same, so training continues, but not bit for bit as it "
                    + "would have without the change%n", c);
        }
    }

    /** A checkpoint of {@code step} was written to {@code where}. */
    void checkpoint(int step, String where) {
        console.printf("checkpoint at step %d: %s%n", step, where);
        if (metrics != null) {
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("type", "checkpoint");
            r.put("step", step);
            r.put("path", where);
            metrics.write(r);
        }
    }

    /**
     * The validation split's loss and accuracy {@code v} after {@code step}, in epoch {@code epoch} (from
     * 0); {@code name} is the split's (a language model's with a Self-Tuning Network: its tuning split).
     */
    void validation(String name, int step, int epoch, double[] v, Objective objective) {
        if (metrics != null) {
            metrics.write(Records.eval(name, step, epoch, v, objective));
        }
        console.printf("[epoch %d] %s: loss %.4f  %s%n", epoch + 1, name, v[0], objective.formatEval(v[0], v[1]));
    }

    /**
     * The run's last lines, the final evaluation's record and the summary.
     *
     * @param t          the final evaluation of {@code test}: loss, accuracy
     * @param parameters the whole model's parameter count
     * @param tuner      the Self-Tuning Network, or null
     */
    void finished(Trainer.Result result, Examples test, double[] t, Objective objective, long parameters,
                  int workers, boolean stoppedEarly, String backend, StnTuner tuner, double allocatedPerStep)
            throws IOException {
        if (objective == Objective.ACCURACY) {
            console.printf("%s: loss %.4f  accuracy %.2f%%  (%d steps in %.1f s, %,.0f tok/s)%n", test.name(),
                    t[0], 100 * t[1], result.steps(), result.wallSeconds(), result.tokensPerSecond());
        } else {
            console.printf("%s: loss %.4f  %s  (%d steps in %.1f s, %,.0f tok/s)%n", test.name(), t[0],
                    objective.formatEval(t[0], t[1]), result.steps(), result.wallSeconds(), result.tokensPerSecond());
        }
        console.printf("parameter digest: %s%n", result.parameterDigest());
        if (metrics != null) {
            metrics.write(Records.eval(test.name(), result.steps(), -1, t, objective));
            Map<String, Object> summary = Records.summary(result, parameters, workers, stoppedEarly, backend);
            if (!Double.isNaN(allocatedPerStep)) {
                // rank 0's JVM: under an embedded Spark every worker and Spark's own threads share it
                summary.put("allocatedBytesPerStep", allocatedPerStep);
            }
            if (tuner != null) {
                summary.put("hyperparameters", tuner.lambda());
                summary.put("hyperSteps", tuner.hyperStepCount());
            }
            metrics.summary(summary);
        }
    }

    /** After {@link #close}: a Self-Tuning Network's report of its hyperparameters, in the run directory. */
    /**
     * After {@link #close}: the run's report page ({@link RunReport}) in the run directory (rank 0
     * with a run directory on this machine) and the line naming it. The run is complete without
     * it: a page that cannot be written is said, with how to write it later, not thrown.
     */
    void report() {
        if (runDir == null) {
            return;
        }
        try {
            console.println("report: " + RunReport.writeFor(runDir));
        } catch (RuntimeException e) {
            console.println("no report: " + e.getMessage() + " (the run itself is complete; write the page with "
                    + "'roundhouse report " + runDir + "')");
        }
    }

    /**
     * After {@link #close}: the model's export in the run directory (rank 0 with a run directory on
     * this machine; a job's owner that keeps the run directory itself writes it there), and the
     * line that says where it is or why there is none. One worker holds the whole model and
     * exports it as it is; with several, the experts are spread over them, and the export is
     * loaded from the checkpoint the run saved of its final step.
     *
     * @param finalCheckpoint that checkpoint, or null when the run saved none of its final step
     */
    void export(Model model, int workers, String finalCheckpoint, Function<String, CheckpointStore> stores) {
        if (runDir == null) {
            return;
        }
        console.println(ModelExport.forRun(runDir, out -> {
            if (workers == 1) {
                ModelExport.write(model, out);
            } else if (finalCheckpoint == null) {
                throw new UserException(UserException.USAGE, "with " + workers + " workers the export is loaded from "
                        + "the checkpoint of the final step, and this run saved none (checkpoint.everySteps = 0); "
                        + "set checkpoint.everySteps, or run roundhouse export on a checkpoint");
            } else {
                try (Backend cpu = Backends.create("cpu")) {
                    ModelExport.run(cpu, finalCheckpoint, stores, out);
                }
            }
        }));
    }

    @Override
    public void close() throws IOException {
        if (metrics != null) {
            metrics.close();
        }
    }
}
