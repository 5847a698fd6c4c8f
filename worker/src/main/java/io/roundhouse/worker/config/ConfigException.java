package io.roundhouse.worker.config;

/** A job configuration that cannot run: the message names the key, the bad value and the fix. */
public final class ConfigException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public ConfigException(String message) {
        super(message);
    }
}
