package io.roundhouse.comms;

import java.nio.file.Path;

/**
 * Hosts a job's media driver in its own JVM, as the local launcher does over IPC, until its
 * standard input closes. Args: aeronBase jobKey.
 */
public final class DriverHostMain {
    private DriverHostMain() {
    }

    public static void main(String[] args) throws Exception {
        CommsConfig cfg = CommsConfig.defaults(Transport.IPC, 1L).withAeronDirBase(Path.of(args[0]));
        try (EmbeddedMediaDriver d = EmbeddedMediaDriver.acquire(cfg, args[1], 2, 2, 0)) {
            System.out.println("driver up in " + d.directory());
            System.out.flush();
            while (System.in.read() >= 0) {
                Thread.onSpinWait();
            }
        }
    }
}
