package io.roundhouse.worker.data;

import io.roundhouse.worker.UserException;

/** A data file that is missing or malformed: the message names the file and what is wrong. */
public final class DataException extends UserException {
    private static final long serialVersionUID = 1L;

    public DataException(String message) {
        super(USAGE, message);
    }

    public DataException(String message, Throwable cause) {
        super(USAGE, message, cause);
    }
}
