package io.roundhouse.driver;

import io.roundhouse.comms.CommsConfig;
import io.roundhouse.comms.Transport;
import io.roundhouse.worker.config.ConfigException;
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
        int mtu = config.get(ConfigKeys.COMMS_MTU_BYTES);
        if (mtu == 0) {
            // A frame may be at most an eighth of a term: small terms take smaller frames.
            mtu = Math.min(c.mtuBytes(), term / 8 / 32 * 32);
        } else if (mtu % 32 != 0 || mtu < 1408 || mtu > term / 8) {
            throw new ConfigException("comms.mtuBytes = " + mtu + ": give a multiple of 32 in [1408, "
                    + Math.min(65504, term / 8) + "] (at most comms.termLengthBytes / 8), or 0 for the default");
        }
        c = c.withTerm(term, mtu).withSocketBuffer(config.get(ConfigKeys.COMMS_SOCKET_BUFFER_BYTES))
                .withTwoLevelAllToAll("hierarchical".equals(config.get(ConfigKeys.COMMS_ALL_TO_ALL)))
                .withIdle(config.get(ConfigKeys.COMMS_IDLE))
                .withOverlap(CommsConfig.Overlap.valueOf(config.get(ConfigKeys.COMMS_OVERLAP).toUpperCase(java.util.Locale.ROOT)));
        String dir = config.get(ConfigKeys.COMMS_AERON_DIR);
        return dir.isEmpty() ? c : c.withAeronDirBase(Path.of(dir));
    }
}
