package io.roundhouse.driver;

import io.roundhouse.comms.CommsConfig;
import io.roundhouse.comms.Transport;
import io.roundhouse.worker.config.ConfigKeys;
import io.roundhouse.worker.config.JobConfig;
import java.util.Locale;

/** The comms settings a job config asks for. */
public final class JobComms {
    private JobComms() {
    }

    public static CommsConfig config(JobConfig config, long token) {
        Transport t = Transport.valueOf(config.get(ConfigKeys.COMMS_TRANSPORT).toUpperCase(Locale.ROOT));
        return CommsConfig.defaults(t, token).withTimeouts(config.get(ConfigKeys.COMMS_START_TIMEOUT_MS),
                config.get(ConfigKeys.COMMS_TIMEOUT_MS));
    }
}
