package io.roundhouse.worker.data;

/** A data file that is missing or malformed: the message names the file and what is wrong. */
public final class DataException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public DataException(String message) {
        super(message);
    }

    public DataException(String message, Throwable cause) {
        super(message, cause);
    }
}
