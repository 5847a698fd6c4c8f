package io.roundhouse.comms;

/** A transport failure: the message names the operation and, where one is to blame, the peer. */
public class CommsException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public CommsException(String message) {
        super(message);
    }

    public CommsException(String message, Throwable cause) {
        super(message, cause);
    }
}
