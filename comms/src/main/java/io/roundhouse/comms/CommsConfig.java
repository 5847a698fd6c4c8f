package io.roundhouse.comms;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The transport settings of one job, validated once. Every member of a group must use the same
 * values (the session token above all).
 *
 * @param transport        IPC (one host) or UDP
 * @param termLengthBytes  Aeron term length per publication: a power of two in [64 KiB, 1 GiB];
 *                         a publication's log is 3 terms, and at most half a term may be in flight
 * @param mtuBytes         largest frame on the wire, a multiple of 32 in [1408, 65504]; our
 *                         frames carry {@code mtu − 64} payload bytes (Aeron's and our header)
 * @param connectTimeoutMs how long {@link Member#connect}, and then {@link Collectives#startBarrier},
 *                         wait for every peer: members start and set up at different speeds
 * @param opTimeoutMs      how long one collective may take before the peers it still waits on
 *                         are named in an error
 * @param idle             idle strategy of a member while it waits: {@code auto} (default: chosen
 *                         from the host's cores, see {@link IdleChoice#autoIdle}), {@code backoff} (spins,
 *                         then yields, then parks), {@code yielding} or {@code busy}
 * @param driverThreading  media driver threads: {@code shared} (one thread, default: busy driver
 *                         threads starve the members on small machines), {@code shared_network}
 *                         (sender and receiver share one, the conductor has its own) or
 *                         {@code dedicated} (three threads)
 * @param aeronDirBase     folder under which the embedded media driver's directory is made
 *                         ({@code /dev/shm} when it exists)
 * @param streamIdBase     Aeron stream id of rank 0; rank r listens on {@code streamIdBase + r}
 * @param sessionToken     random per job: frames without it are dropped and counted
 * @param socketBufferBytes UDP socket send and receive buffer size asked of the OS for every
 *                         channel ({@code so-sndbuf}, {@code so-rcvbuf}); 0 = the OS default
 * @param twoLevelAllToAll whether the token exchange runs {@link Collectives#allToAllV2D} (within
 *                         hosts, then between them) rather than the flat all-to-all
 * @param overlap          {@link Overlap#ON}: the MoE layers' exchanges that have independent work
 *                         beside them run while it is computed ({@link Collectives#startAllToAllV}) and
 *                         (flat all-to-all) stream over a sibling member; {@link Overlap#ALL}: a second
 *                         sibling besides, for the dense gradients' buckets; {@link Overlap#OFF}: every
 *                         exchange blocks first
 */
public record CommsConfig(Transport transport, int termLengthBytes, int mtuBytes, long connectTimeoutMs,
                          long opTimeoutMs, String idle, String driverThreading, Path aeronDirBase, int streamIdBase, long sessionToken,
                          int socketBufferBytes, boolean twoLevelAllToAll, Overlap overlap) {

    public static final int DEFAULT_TERM_LENGTH = 4 << 20;
    public static final int DEFAULT_MTU_IPC = 65504;
    public static final int DEFAULT_MTU_UDP = 8192;

    public CommsConfig {
        if (Integer.bitCount(termLengthBytes) != 1 || termLengthBytes < (64 << 10) || termLengthBytes > (1 << 30)) {
            throw new IllegalArgumentException("comms termLengthBytes " + termLengthBytes
                    + " must be a power of two in [65536, 1073741824]");
        }
        if (mtuBytes % 32 != 0 || mtuBytes < 1408 || mtuBytes > 65504) {
            throw new IllegalArgumentException("comms mtuBytes " + mtuBytes + " must be a multiple of 32 in [1408, 65504]");
        }
        if (mtuBytes > termLengthBytes / 8) {
            throw new IllegalArgumentException("comms mtuBytes " + mtuBytes + " must be at most termLengthBytes/8 = "
                    + termLengthBytes / 8);
        }
        java.util.Objects.requireNonNull(overlap, "overlap");
        if (connectTimeoutMs <= 0 || opTimeoutMs <= 0) {
            throw new IllegalArgumentException("comms timeouts must be positive (connect " + connectTimeoutMs
                    + " ms, op " + opTimeoutMs + " ms)");
        }
        if (!idle.equals("auto") && !idle.equals("backoff") && !idle.equals("yielding") && !idle.equals("busy")) {
            throw new IllegalArgumentException("comms idle strategy '" + idle + "' must be auto, backoff, yielding or busy");
        }
        if (!driverThreading.equals("shared") && !driverThreading.equals("shared_network")
                && !driverThreading.equals("dedicated")) {
            throw new IllegalArgumentException("comms driver threading '" + driverThreading
                    + "' must be shared, shared_network or dedicated");
        }
        if (socketBufferBytes < 0) {
            throw new IllegalArgumentException("comms socketBufferBytes " + socketBufferBytes + " must be >= 0");
        }
        if (streamIdBase < 1) {
            throw new IllegalArgumentException("comms streamIdBase " + streamIdBase + " must be positive");
        }
    }

    /** A fresh random session token for a job (never 0). */
    public static long randomSessionToken() {
        long t;
        do {
            t = new java.security.SecureRandom().nextLong();
        } while (t == 0);
        return t;
    }

    /** Defaults for a transport, with the given session token. */
    public static CommsConfig defaults(Transport transport, long sessionToken) {
        Path shm = Path.of("/dev/shm");
        return new CommsConfig(transport, DEFAULT_TERM_LENGTH,
                transport == Transport.IPC ? DEFAULT_MTU_IPC : DEFAULT_MTU_UDP, 30_000, 30_000, "auto", "shared",
                Files.isDirectory(shm) ? shm : Path.of(System.getProperty("java.io.tmpdir")), 1000, sessionToken, 0, false, Overlap.ON);
    }

    public CommsConfig withTimeouts(long connectMs, long opMs) {
        return new CommsConfig(transport, termLengthBytes, mtuBytes, connectMs, opMs, idle, driverThreading, aeronDirBase, streamIdBase, sessionToken, socketBufferBytes, twoLevelAllToAll, overlap);
    }

    public CommsConfig withTerm(int termBytes, int mtu) {
        return new CommsConfig(transport, termBytes, mtu, connectTimeoutMs, opTimeoutMs, idle, driverThreading, aeronDirBase, streamIdBase, sessionToken, socketBufferBytes, twoLevelAllToAll, overlap);
    }

    /** The same settings under another job's session token. */
    public CommsConfig withSessionToken(long token) {
        return new CommsConfig(transport, termLengthBytes, mtuBytes, connectTimeoutMs, opTimeoutMs, idle, driverThreading,
                aeronDirBase, streamIdBase, token, socketBufferBytes, twoLevelAllToAll, overlap);
    }

    public CommsConfig withAeronDirBase(Path base) {
        return new CommsConfig(transport, termLengthBytes, mtuBytes, connectTimeoutMs, opTimeoutMs, idle, driverThreading, base,
                streamIdBase, sessionToken, socketBufferBytes, twoLevelAllToAll, overlap);
    }

    public CommsConfig withDriverThreading(String threading) {
        return new CommsConfig(transport, termLengthBytes, mtuBytes, connectTimeoutMs, opTimeoutMs, idle, threading,
                aeronDirBase, streamIdBase, sessionToken, socketBufferBytes, twoLevelAllToAll, overlap);
    }

    /** The same settings with rank r listening on stream {@code base + r}. */
    public CommsConfig withStreamIdBase(int base) {
        return new CommsConfig(transport, termLengthBytes, mtuBytes, connectTimeoutMs, opTimeoutMs, idle, driverThreading,
                aeronDirBase, base, sessionToken, socketBufferBytes, twoLevelAllToAll, overlap);
    }

    public CommsConfig withSocketBuffer(int bytes) {
        return new CommsConfig(transport, termLengthBytes, mtuBytes, connectTimeoutMs, opTimeoutMs, idle, driverThreading,
                aeronDirBase, streamIdBase, sessionToken, bytes, twoLevelAllToAll, overlap);
    }

    public CommsConfig withTwoLevelAllToAll(boolean on) {
        return new CommsConfig(transport, termLengthBytes, mtuBytes, connectTimeoutMs, opTimeoutMs, idle, driverThreading,
                aeronDirBase, streamIdBase, sessionToken, socketBufferBytes, on, overlap);
    }

    public CommsConfig withIdle(String strategy) {
        return new CommsConfig(transport, termLengthBytes, mtuBytes, connectTimeoutMs, opTimeoutMs, strategy, driverThreading, aeronDirBase,
                streamIdBase, sessionToken, socketBufferBytes, twoLevelAllToAll, overlap);
    }

    /** {@code comms.overlap}'s schedules (see the record's {@code overlap}). */
    public enum Overlap {
        OFF, ON, ALL
    }

    /** Whether exchanges overlap compute ({@link Overlap#ON} or {@link Overlap#ALL}). */
    public boolean overlaps() {
        return overlap != Overlap.OFF;
    }

    /**
     * Whether the MoE layers' combines may stream over a sibling member (overlap with the flat
     * all-to-all; the caller also needs every worker to host several experts).
     */
    public boolean streamsCombines() {
        return overlaps() && !twoLevelAllToAll;
    }

    /**
     * The sibling members each member may open beside itself, whose logs take as much room as its
     * own: one for the streamed combines ({@link #streamsCombines}; not made where a worker hosts
     * fewer than two experts, which is not known here, so this may count one too many) and one for
     * the dense gradients' buckets ({@link Overlap#ALL}).
     */
    public int siblings() {
        return (streamsCombines() ? 1 : 0) + (overlap == Overlap.ALL ? 1 : 0);
    }

    public CommsConfig withOverlap(Overlap on) {
        return new CommsConfig(transport, termLengthBytes, mtuBytes, connectTimeoutMs, opTimeoutMs, idle, driverThreading,
                aeronDirBase, streamIdBase, sessionToken, socketBufferBytes, twoLevelAllToAll, on);
    }
}
