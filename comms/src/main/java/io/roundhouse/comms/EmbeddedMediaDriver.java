package io.roundhouse.comms;

import io.aeron.Aeron;
import io.aeron.CommonContext;
import io.aeron.driver.MediaDriver;
import io.aeron.driver.ThreadingMode;
import io.aeron.driver.ext.DebugReceiveChannelEndpoint;
import io.aeron.driver.ext.RandomLossGenerator;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.agrona.concurrent.BackoffIdleStrategy;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One Aeron media driver per JVM and job, shared by the members in it, with one Aeron client.
 * Its directory is {@code aeronDirBase/roundhouse-<jobKey>}, deleted on start and on shutdown, so a
 * crashed run leaves nothing that the next attempt trips over; what a killed JVM could not delete is
 * removed by the next driver started there once it is stale ({@link #sweepStale}). If another JVM on this host already
 * runs a driver in that directory, this one connects to it as a client instead (IPC between JVMs of
 * one host then works through that driver; if its JVM exits, the others lose their transport).
 * {@link #attach} only ever connects, for members whose launcher hosts the driver.
 *
 * <p>SHARED threading and a backoff idle strategy: busy-spinning driver threads on a 2-core machine
 * starve the members (measured: UDP collapsed to ~70 MB/s).
 */
public final class EmbeddedMediaDriver implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(EmbeddedMediaDriver.class);
    private static final Map<Path, EmbeddedMediaDriver> RUNNING = new HashMap<>();
    /** How stale another JVM's driver heartbeat may be: Aeron's own client default, 10 s. */
    private static final long DRIVER_TIMEOUT_MS = CommonContext.DEFAULT_DRIVER_TIMEOUT_MS;
    /**
     * How long a dead run's Aeron directory stays before a new driver removes it: long enough that
     * a live driver whose JVM is paused (a debugger, SIGSTOP, a long GC) keeps its directory.
     */
    static final long STALE_AFTER_MS = TimeUnit.MINUTES.toMillis(10);

    private final Path dir;
    private final CommsConfig cfg;
    private final MediaDriver driver; // null when connected to another JVM's driver
    private final Aeron aeron;
    private int users;

    private EmbeddedMediaDriver(Path dir, CommsConfig cfg, MediaDriver driver, Aeron aeron) {
        this.dir = dir;
        this.cfg = cfg;
        this.driver = driver;
        this.aeron = aeron;
    }

    /**
     * The driver for {@code jobKey} in this JVM, launched on first use.
     *
     * @param jobKey        names the job and attempt (letters, digits, '-', '_', '.')
     * @param localMembers  members this JVM will host (for the shared-memory check)
     * @param worldSize     members in the group
     * @param lossRate      fraction of received UDP data frames to drop, for testing recovery; 0 in
     *                      production
     */
    public static synchronized EmbeddedMediaDriver acquire(CommsConfig cfg, String jobKey, int localMembers,
                                                           int worldSize, double lossRate) {
        Path dir = directory(cfg, jobKey);
        EmbeddedMediaDriver d = RUNNING.get(dir);
        if (d == null) {
            d = start(cfg, dir, localMembers, worldSize, lossRate);
            RUNNING.put(dir, d);
        } else if (d.cfg.termLengthBytes() != cfg.termLengthBytes() || d.cfg.mtuBytes() != cfg.mtuBytes()
                || !d.cfg.driverThreading().equals(cfg.driverThreading()) || d.cfg.transport() != cfg.transport()) {
            throw new IllegalStateException("comms: the media driver for job " + jobKey + " already runs in " + dir
                    + " with " + d.cfg.transport() + ", term " + d.cfg.termLengthBytes() + ", mtu " + d.cfg.mtuBytes()
                    + ", threading " + d.cfg.driverThreading() + "; every member of a job must use the same settings");
        }
        d.users++;
        return d;
    }

    /**
     * A client of the driver that another process on this host runs for {@code jobKey} (the local
     * launcher's, over IPC): waits up to the connect timeout for it to be up, and never starts,
     * replaces or deletes one. (Acquiring instead would take a driver that answers late, as on a
     * loaded machine, for a dead one, and start a second driver over its directory.)
     *
     * @throws CommsException naming the directory when no driver is active there in time
     */
    public static EmbeddedMediaDriver attach(CommsConfig cfg, String jobKey) {
        Path dir = directory(cfg, jobKey);
        long deadline = System.nanoTime() + cfg.connectTimeoutMs() * 1_000_000L;
        while (true) {
            synchronized (EmbeddedMediaDriver.class) {  // not held while waiting
                EmbeddedMediaDriver d = RUNNING.get(dir);
                if (d == null && CommonContext.isDriverActive(dir.toFile(), DRIVER_TIMEOUT_MS, s -> { })) {
                    LOG.info("comms: using the media driver running in {}", dir);
                    d = new EmbeddedMediaDriver(dir, cfg, null, connect(dir));
                    RUNNING.put(dir, d);
                }
                if (d != null) {
                    d.users++;
                    return d;
                }
            }
            if (System.nanoTime() > deadline) {
                throw new CommsException("comms: no media driver is active in " + dir + " after "
                        + cfg.connectTimeoutMs() + " ms; the process that started this member hosts it (the "
                        + "launcher, over IPC): is it still running?");
            }
            sleep(50);
        }
    }

    private static Path directory(CommsConfig cfg, String jobKey) {
        if (!jobKey.matches("[A-Za-z0-9._-]+")) {
            throw new IllegalArgumentException("job key '" + jobKey + "' may hold only letters, digits, '.', '_' and '-'");
        }
        return cfg.aeronDirBase().resolve("roundhouse-" + jobKey).toAbsolutePath();
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CommsException("comms: interrupted while waiting for the media driver", e);
        }
    }

    private static EmbeddedMediaDriver start(CommsConfig cfg, Path dir, int localMembers, int worldSize, double lossRate) {
        // Another JVM's driver counts as running while its heartbeat is as fresh as an Aeron client
        // requires (not 1 s: a driver in a JVM that pauses that long would be replaced and deleted).
        if (CommonContext.isDriverActive(dir.toFile(), DRIVER_TIMEOUT_MS, s -> { })) {
            LOG.info("comms: using the media driver already running in {}", dir);
            return new EmbeddedMediaDriver(dir, cfg, null, connect(dir));
        }
        sweepStale(dir.getParent(), STALE_AFTER_MS);
        checkSpace(cfg, dir.getParent(), 1, localMembers, worldSize);
        MediaDriver.Context ctx = new MediaDriver.Context()
                .aeronDirectoryName(dir.toString())
                .dirDeleteOnStart(true)
                .dirDeleteOnShutdown(true)
                .threadingMode(ThreadingMode.valueOf(cfg.driverThreading().toUpperCase(java.util.Locale.ROOT)))
                .sharedIdleStrategy(idle())
                .conductorIdleStrategy(idle())
                .senderIdleStrategy(idle())
                .receiverIdleStrategy(idle())
                .sharedNetworkIdleStrategy(idle())
                .ipcTermBufferLength(cfg.termLengthBytes())
                .publicationTermBufferLength(cfg.termLengthBytes())
                .ipcMtuLength(cfg.mtuBytes())
                .mtuLength(cfg.mtuBytes())
                .initialWindowLength(Math.min(cfg.termLengthBytes() / 2, 4 << 20))
                .socketRcvbufLength(4 << 20)
                .socketSndbufLength(4 << 20)
                .counterValuesBufferLength(counterValuesBytes(cfg, localMembers, worldSize))
                .termBufferSparseFile(false)
                .spiesSimulateConnection(false)
                .warnIfDirectoryExists(false);
        if (lossRate > 0) {
            ctx.receiveChannelEndpointSupplier((udpChannel, dispatcher, status, context) ->
                    new DebugReceiveChannelEndpoint(udpChannel, dispatcher, status, context,
                            new RandomLossGenerator(lossRate, 42), new RandomLossGenerator(0, 43)));
        }
        MediaDriver driver = MediaDriver.launchEmbedded(ctx);
        LOG.info("comms: media driver started in {} ({}, term {} KiB, mtu {})", dir, cfg.transport(),
                cfg.termLengthBytes() >> 10, cfg.mtuBytes());
        try {
            return new EmbeddedMediaDriver(dir, cfg, driver, connect(dir));
        } catch (RuntimeException e) {
            driver.close();
            throw e;
        }
    }

    /**
     * Spin, yield briefly, then park for at most 50 us. Measured on 2 cores (bench alltoall): a
     * driver that yields for long competes with the members for the cores, one that parks for
     * long (100 us and more) adds its wake-up delay to every UDP frame and IPC window update.
     */
    private static BackoffIdleStrategy idle() {
        return new BackoffIdleStrategy(100, 1_000, TimeUnit.MICROSECONDS.toNanos(1), TimeUnit.MICROSECONDS.toNanos(50));
    }

    private static Aeron connect(Path dir) {
        try {
            return Aeron.connect(new Aeron.Context().aeronDirectoryName(dir.toString())
                    .errorHandler(t -> LOG.warn("comms: Aeron client error: {}", t.toString())));
        } catch (io.aeron.exceptions.AeronException e) {
            throw new CommsException("comms: cannot connect to the media driver in " + dir + ": " + e.getMessage(), e);
        }
    }

    /**
     * Fails, saying how much is needed and how to change it, when the driver's file system cannot
     * hold the logs: every publication and (over UDP) every image is 3 terms.
     */
    /**
     * Removes the Aeron directories in {@code base} that runs which died without cleaning up left
     * behind (a SIGKILLed worker, executor or driver: tens of MiB of logs each, in /dev/shm by
     * default, until the space for the next run's logs runs out). A directory goes only when it is
     * a {@code roundhouse-*} one, no driver of this JVM uses it, its driver's heartbeat (if it ever
     * had one) is older than {@code olderThanMs}, and it was itself last changed before that; one
     * that cannot be removed (another user's) is left alone.
     *
     * @return how many were removed
     */
    static int sweepStale(Path base, long olderThanMs) {
        if (base == null || !Files.isDirectory(base)) {
            return 0;
        }
        int removed = 0;
        long bytes = 0;
        long now = System.currentTimeMillis();
        try (java.nio.file.DirectoryStream<Path> dirs = Files.newDirectoryStream(base, "roundhouse-*")) {
            for (Path d : dirs) {
                Path abs = d.toAbsolutePath();
                try {
                    if (!Files.isDirectory(d, java.nio.file.LinkOption.NOFOLLOW_LINKS) || RUNNING.containsKey(abs)
                            || now - Files.getLastModifiedTime(d).toMillis() < olderThanMs
                            || CommonContext.isDriverActive(d.toFile(), olderThanMs, m -> { })) {
                        continue;
                    }
                    long size = 0;
                    try (java.util.stream.Stream<Path> files = Files.walk(d)) {
                        for (Path f : files.sorted(java.util.Comparator.reverseOrder()).toList()) {
                            size += Files.isRegularFile(f) ? Files.size(f) : 0;
                            Files.delete(f);
                        }
                    }
                    removed++;
                    bytes += size;
                } catch (IOException | RuntimeException e) {
                    LOG.debug("comms: left {} in place ({})", d, e.toString());
                }
            }
        } catch (IOException e) {
            LOG.debug("comms: could not list {} for stale Aeron directories ({})", base, e.toString());
        }
        if (removed > 0) {
            LOG.info("comms: removed {} Aeron director{} ({} MiB) left in {} by runs that ended without cleaning up",
                    removed, removed == 1 ? "y" : "ies", bytes >> 20, base);
        }
        return removed;
    }

    /** Aeron's bytes per counter value (its metadata takes four times as many). */
    private static final int COUNTER_BYTES = 128;
    /** Aeron's bounds on the counter values buffer. */
    private static final int COUNTER_VALUES_MIN = 1 << 20;
    private static final int COUNTER_VALUES_MAX = 500 << 20;
    /** Aeron's default error log, to-driver and to-clients buffers (with their trailers and the header). */
    private static final long CNC_FIXED_BYTES = (4L << 20) + (2L << 20) + (8L << 10);
    /** The loss report file. */
    private static final long LOSS_REPORT_BYTES = 1L << 20;

    /**
     * The driver's counter values buffer, sized to its streams: the local members' and their
     * siblings' publications and images, eight counters each at most, and a thousand besides;
     * at least Aeron's 1 MiB. Aeron's default of 8 MiB (with 32 MiB of metadata beside it) made the
     * driver's control file 46 MiB, nearly as much as two workers' logs, and over Docker's
     * default /dev/shm (64 MiB) with them.
     */
    static int counterValuesBytes(CommsConfig cfg, int localMembers, int worldSize) {
        long streams = 2L * localMembers * (1 + cfg.siblings()) * Math.max(1, worldSize - 1);
        long bytes = (streams * 8 + 1024) * COUNTER_BYTES;
        long pow2 = Long.highestOneBit(Math.max(1, bytes - 1)) << 1;
        return (int) Math.min(COUNTER_VALUES_MAX, Math.max(COUNTER_VALUES_MIN, pow2));
    }

    /**
     * Refuses, in one message naming the fixes, to start where {@code drivers} media drivers of
     * {@code localMembers} members each (of {@code worldSize}) would not fit in {@code base}: a
     * launcher that starts several on one host (UDP on one machine, each worker its own driver, as on
     * its own host) checks them together before any starts, since each driver's check alone sees
     * room the others have not taken yet.
     */
    public static void checkSpace(CommsConfig cfg, Path base, int drivers, int localMembers, int worldSize) {
        // Each member's siblings (the streamed combines, the gradient buckets) have logs as large as its own.
        long logs = (long) drivers * localMembers * (1 + cfg.siblings()) * (worldSize - 1)
                * (cfg.transport() != Transport.IPC ? 2 : 1);
        // The logs, each driver's control file (counters: values and four times as much metadata)
        // and loss report, and a mebibyte to spare.
        long needed = logs * 3L * cfg.termLengthBytes() + drivers * (CNC_FIXED_BYTES
                + 5L * counterValuesBytes(cfg, localMembers, worldSize) + LOSS_REPORT_BYTES + (1L << 20));
        long free;
        try {
            Files.createDirectories(base);
            free = Files.getFileStore(base).getUsableSpace();
        } catch (IOException e) {
            throw new CommsException("comms: cannot use " + base + " for the Aeron directory ("
                    + (e.getMessage() != null ? e.getMessage() : e.toString()) + "); point it at a writable folder "
                    + "(comms.aeronDir)", e);
        }
        if (free < needed) {
            throw new CommsException(String.format("comms: the Aeron logs need about %d MiB in %s (%s%d members "
                    + "here%s, %d in the group, term length %d KiB: %d logs of 3 terms) but only %d MiB is free. Lower "
                    + "the term length (comms.termLengthBytes), or give %s more room (Docker: --shm-size; Spark on "
                    + "Kubernetes: a larger emptyDir medium=Memory), or put the Aeron directory elsewhere "
                    + "(comms.aeronDir).", needed >> 20, base, drivers > 1 ? drivers + " media drivers, " : "",
                    drivers * localMembers, cfg.siblings() > 0 ? " and their siblings" : "", worldSize,
                    cfg.termLengthBytes() >> 10, logs, free >> 20, base));
        }
    }

    Aeron aeron() {
        return aeron;
    }

    /** Whether this JVM runs the driver (false: a client of another process's driver). */
    boolean hostsDriver() {
        return driver != null;
    }

    public Path directory() {
        return dir;
    }

    /** Releases this user's hold; the last one closes the client and the driver (deleting the directory). */
    @Override
    public void close() {
        synchronized (EmbeddedMediaDriver.class) {
            if (--users > 0) {
                return;
            }
            RUNNING.remove(dir);
        }
        aeron.close();
        if (driver != null) {
            driver.close();
            LOG.info("comms: media driver in {} stopped", dir);
        }
    }
}
