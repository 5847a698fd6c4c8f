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
 * crashed run leaves nothing that the next attempt trips over. If another JVM on this host already
 * runs a driver in that directory, this one connects to it as a client instead (IPC between JVMs of
 * one host then works through that driver; if its JVM exits, the others lose their transport).
 *
 * <p>SHARED threading and a backoff idle strategy: busy-spinning driver threads on a 2-core machine
 * starve the members (measured: UDP collapsed to ~70 MB/s).
 */
public final class EmbeddedMediaDriver implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(EmbeddedMediaDriver.class);
    private static final Map<Path, EmbeddedMediaDriver> RUNNING = new HashMap<>();

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
        if (!jobKey.matches("[A-Za-z0-9._-]+")) {
            throw new IllegalArgumentException("job key '" + jobKey + "' may hold only letters, digits, '.', '_' and '-'");
        }
        Path dir = cfg.aeronDirBase().resolve("roundhouse-" + jobKey).toAbsolutePath();
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

    private static EmbeddedMediaDriver start(CommsConfig cfg, Path dir, int localMembers, int worldSize, double lossRate) {
        if (CommonContext.isDriverActive(dir.toFile(), 1_000, s -> { })) {
            LOG.info("comms: using the media driver already running in {}", dir);
            return new EmbeddedMediaDriver(dir, cfg, null, connect(dir));
        }
        checkSpace(cfg, dir, localMembers, worldSize);
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
        return Aeron.connect(new Aeron.Context().aeronDirectoryName(dir.toString())
                .errorHandler(t -> LOG.warn("comms: Aeron client error: {}", t.toString())));
    }

    /**
     * Fails, saying how much is needed and how to change it, when the driver's file system cannot
     * hold the logs: every publication and (over UDP) every image is 3 terms.
     */
    static void checkSpace(CommsConfig cfg, Path dir, int localMembers, int worldSize) {
        long logs = (long) localMembers * (worldSize - 1) * (cfg.transport() == Transport.UDP ? 2 : 1);
        long needed = logs * 3L * cfg.termLengthBytes() + (16L << 20);
        long free;
        try {
            Path existing = dir.getParent();
            Files.createDirectories(existing);
            free = Files.getFileStore(existing).getUsableSpace();
        } catch (IOException e) {
            throw new CommsException("comms: cannot use " + dir.getParent() + " for the Aeron directory: " + e, e);
        }
        if (free < needed) {
            throw new CommsException(String.format("comms: the Aeron logs need about %d MiB in %s (%d members here, "
                    + "%d in the group, term length %d KiB: %d logs of 3 terms) but only %d MiB is free. Lower the "
                    + "term length, or give %s more room (Docker: --shm-size; Spark on Kubernetes: a larger emptyDir "
                    + "medium=Memory), or put the Aeron directory elsewhere.", needed >> 20, dir.getParent(),
                    localMembers, worldSize, cfg.termLengthBytes() >> 10, logs, free >> 20, dir.getParent()));
        }
    }

    Aeron aeron() {
        return aeron;
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
