package io.roundhouse.kernels;

/**
 * The backend a job asks for cannot run on this machine (no NVIDIA driver or GPU, a GPU address
 * that is not a device ordinal): the message says why and what to use instead. A user's
 * environment, not a bug: the command line prints the message alone and exits with 2.
 */
public final class BackendException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public BackendException(String message) {
        super(message);
    }
}
