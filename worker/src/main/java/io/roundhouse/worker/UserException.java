package io.roundhouse.worker;

/**
 * An error caused by the user's input or environment (config, data, checkpoints, paths, the
 * machine), not by Roundhouse: its message names the problem and the fix in a line or two, and the
 * command line prints just that, without a stack trace, and exits with {@link #exitCode()}.
 * Anything else that reaches the command line is a bug and is printed with its trace.
 *
 * <p>The other modules have their own: {@code CommsException} (a peer or the transport failed, at
 * run time) and {@code BackendException} (the backend asked for cannot run here).
 */
public class UserException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** The job cannot run as given (bad config, data, checkpoint, output folder): exit code 2. */
    public static final int USAGE = 2;
    /** The job failed while running (a full disk, a file that cannot be written): exit code 1. */
    public static final int RUNTIME = 1;

    private final int exitCode;

    public UserException(int exitCode, String message) {
        this(exitCode, message, null);
    }

    public UserException(int exitCode, String message, Throwable cause) {
        super(message, cause);
        if (exitCode != USAGE && exitCode != RUNTIME) {
            throw new IllegalArgumentException("exit code " + exitCode + ": use USAGE or RUNTIME");
        }
        this.exitCode = exitCode;
    }

    /** 2 ({@link #USAGE}) or 1 ({@link #RUNTIME}). */
    public int exitCode() {
        return exitCode;
    }

    /**
     * A file or folder of the run that cannot be written (full disk, no permission, a file where
     * a folder should be), naming it, the reason the system gave, and the fix.
     */
    public static UserException cannotWrite(Object what, java.io.IOException e) {
        String why = reason(e);
        if (e instanceof java.nio.file.FileSystemException f && String.valueOf(what).equals(f.getFile())) {
            why = why.substring(f.getFile().length() + 2);  // the file is named already
        }
        return new UserException(RUNTIME, "cannot write " + what + ": " + why
                + " (make room there, or choose another folder)", e);
    }

    /** The system's reason for an I/O failure, without the exception's class name. */
    public static String reason(java.io.IOException e) {
        if (e instanceof java.nio.file.FileSystemException f) {
            String why = f.getReason() != null ? f.getReason() : e.getClass().getSimpleName().replace("Exception", "");
            return (f.getFile() != null ? f.getFile() + ": " : "") + why;
        }
        return e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName();
    }
}
