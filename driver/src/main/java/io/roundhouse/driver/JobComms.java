package io.roundhouse.driver;

import io.roundhouse.comms.CommsConfig;
import io.roundhouse.comms.Transport;
import io.roundhouse.worker.config.ConfigKeys;
import io.roundhouse.worker.config.JobConfig;
import java.nio.file.Path;
import java.util.Locale;

/** The comms settings a job config asks for. */
public final class JobComms {
    private JobComms() {
    }

    public static CommsConfig config(JobConfig config, long token) {
        Transport t = Transport.valueOf(config.get(ConfigKeys.COMMS_TRANSPORT).toUpperCase(Locale.ROOT));
        CommsConfig c = CommsConfig.defaults(t, token).withTimeouts(config.get(ConfigKeys.COMMS_START_TIMEOUT_MS),
                config.get(ConfigKeys.COMMS_TIMEOUT_MS));
        int term = config.get(ConfigKeys.COMMS_TERM_LENGTH_BYTES);
        // A frame may be at most an eighth of a term: small terms take smaller frames.
        c = c.withTerm(term, Math.min(c.mtuBytes(), term / 8 / 32 * 32));
        String dir = config.get(ConfigKeys.COMMS_AERON_DIR);
        return dir.isEmpty() ? c : c.withAeronDirBase(Path.of(dir));
    }
}
