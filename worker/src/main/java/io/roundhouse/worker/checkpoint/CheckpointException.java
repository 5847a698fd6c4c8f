package io.roundhouse.worker.checkpoint;

import io.roundhouse.worker.UserException;

/**
 * A checkpoint cannot be used (exit code 2: damaged, incomplete, of another model) or written
 * (exit code 1, at run time): the message names the file and what to do.
 */
public final class CheckpointException extends UserException {
    private static final long serialVersionUID = 1L;

    /** A checkpoint that cannot be used. */
    public CheckpointException(String message) {
        super(USAGE, message);
    }

    /** A checkpoint that cannot be used. */
    public CheckpointException(String message, Throwable cause) {
        super(USAGE, message, cause);
    }

    private CheckpointException(int exitCode, String message, Throwable cause) {
        super(exitCode, message, cause);
    }

    /** A checkpoint that cannot be written while the job runs; earlier ones are untouched. */
    public static CheckpointException notWritten(String message, Throwable cause) {
        return new CheckpointException(RUNTIME, message, cause);
    }
}
