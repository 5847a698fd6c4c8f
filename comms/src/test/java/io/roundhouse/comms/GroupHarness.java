package io.roundhouse.comms;

import java.io.IOException;
import java.net.DatagramSocket;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Runs W members of one group on threads of this JVM, sharing one embedded media driver (also for
 * the driver's tests, through this module's test jar).
 */
public final class GroupHarness {
    private static final AtomicLong JOBS = new AtomicLong();

    public interface PerRank<T> {
        T run(Collectives c) throws Exception;
    }

    public static CommsConfig config(Transport t, Path aeronBase) {
        return CommsConfig.defaults(t, 0x5EC7E7L).withTimeouts(10_000, 10_000).withAeronDirBase(aeronBase);
    }

    static List<String> endpoints(Transport t, int w) {
        List<String> eps = new ArrayList<>();
        for (int r = 0; r < w; r++) {
            eps.add(t == Transport.IPC ? "ipc" : "127.0.0.1:" + freeUdpPort());
        }
        return eps;
    }

    static int freeUdpPort() {
        try (DatagramSocket s = new DatagramSocket(0)) {
            return s.getLocalPort();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    static String jobKey(String name) {
        return name + "-" + ProcessHandle.current().pid() + "-" + JOBS.incrementAndGet();
    }

    /** Runs {@code body} on every rank; returns each rank's result or rethrows the first failure. */
    public static <T> List<T> run(CommsConfig cfg, int w, double lossRate, PerRank<T> body) throws Exception {
        List<String> eps = endpoints(cfg.transport(), w);
        try (EmbeddedMediaDriver driver = EmbeddedMediaDriver.acquire(cfg, jobKey("t"), w, w, lossRate)) {
            return runOn(cfg, driver, eps, w, body);
        }
    }

    static <T> List<T> runOn(CommsConfig cfg, EmbeddedMediaDriver driver, List<String> eps, int w, PerRank<T> body)
            throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(w);
        try {
            List<Future<T>> futures = new ArrayList<>();
            for (int r = 0; r < w; r++) {
                int rank = r;
                futures.add(pool.submit(() -> {
                    try (Member m = new Member(cfg, driver, rank, eps)) {
                        m.connect();
                        return body.run(new Collectives(m));
                    }
                }));
            }
            List<T> out = new ArrayList<>();
            for (Future<T> f : futures) {
                out.add(f.get(60, TimeUnit.SECONDS));
            }
            return out;
        } finally {
            pool.shutdownNow();
        }
    }
}
