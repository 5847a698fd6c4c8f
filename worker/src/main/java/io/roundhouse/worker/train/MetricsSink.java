package io.roundhouse.worker.train;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

/**
 * Where rank 0 sends a run's records: the run directory on this machine ({@link #runDirectory}),
 * or, for a worker in a Spark task, the driver that owns the run directory.
 */
public interface MetricsSink extends AutoCloseable {
    /** One line of {@code metrics.jsonl}. */
    void write(Map<String, Object> record);

    /**
     * Step {@code step}'s {@code train} record, already one JSON line ({@link StepLine}; valid only
     * during the call). By default parsed into a map for {@link #write}; the run directory writes
     * the line as it is, allocating nothing.
     */
    default void writeStep(int step, CharSequence json) {
        write(MetricsWriter.parse(json));
    }

    /** Makes what was written visible (called with each progress line). */
    void flush();

    /** No request from whoever runs the job. */
    int NONE = 0;
    /** Write a checkpoint at the end of this step. */
    int CHECKPOINT = 1;
    /** Write a checkpoint at the end of this step and stop training there. */
    int STOP = 2;

    /**
     * What the job's owner asks for now (rank 0 asks once per step; the trainer hands the answer
     * to every worker in the step's all-reduce, so all act at the same step).
     */
    default int pollCommand() {
        return NONE;
    }

    /**
     * Who commits rank 0's checkpoints (writes the manifest and prunes old ones), or null: rank 0
     * does, into the store. The Spark driver commits them itself.
     */
    default io.roundhouse.worker.checkpoint.Checkpointer.Committer checkpointCommitter() {
        return null;
    }

    /** The run's {@code summary.json}. */
    void summary(Map<String, Object> summary) throws IOException;

    @Override
    void close() throws IOException;

    /**
     * {@code metrics.jsonl} and {@code summary.json} (written atomically) in {@code runDir}; a file
     * {@code STOP} or {@code CHECKPOINT} put into it (looked for every 200 ms) is the owner's
     * command, and is removed once taken.
     */
    static MetricsSink runDirectory(Path runDir) throws IOException {
        MetricsWriter w = new MetricsWriter(runDir.resolve("metrics.jsonl"));
        return new MetricsSink() {
            private long nextLook;
            private final java.io.File stop = runDir.resolve("STOP").toFile();
            private final java.io.File checkpoint = runDir.resolve("CHECKPOINT").toFile();

            @Override
            public int pollCommand() {
                long now = System.nanoTime();
                if (now < nextLook) {
                    return NONE;
                }
                nextLook = now + 200_000_000L;
                // java.io.File's existence check allocates nothing (the NIO calls allocate a few KB
                // when the file is missing, which is every look); only a file that is there is removed.
                if (!stop.exists() && !checkpoint.exists()) {
                    return NONE;
                }
                try {
                    if (java.nio.file.Files.deleteIfExists(stop.toPath())) {
                        return STOP;
                    }
                    return java.nio.file.Files.deleteIfExists(checkpoint.toPath()) ? CHECKPOINT : NONE;
                } catch (IOException e) {
                    throw io.roundhouse.worker.UserException.cannotWrite("the command file (STOP, CHECKPOINT) in "
                            + runDir, e);
                }
            }

            @Override
            public void write(Map<String, Object> record) {
                w.write(record);
            }

            @Override
            public void writeStep(int step, CharSequence json) {
                w.writeLine(json);
            }

            @Override
            public void flush() {
                w.flush();
            }

            @Override
            public void summary(Map<String, Object> summary) throws IOException {
                RunFiles.writeAtomically(runDir.resolve("summary.json"), MetricsWriter.json(summary) + "\n");
            }

            @Override
            public void close() throws IOException {
                w.close();
            }
        };
    }
}
