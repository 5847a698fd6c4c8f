package io.roundhouse.worker.config;

import io.roundhouse.worker.UserException;

/** A job configuration that cannot run: the message names the key, the bad value and the fix. */
public final class ConfigException extends UserException {
    private static final long serialVersionUID = 1L;

    public ConfigException(String message) {
        super(USAGE, message);
    }
}
