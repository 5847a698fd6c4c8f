package io.roundhouse.comms;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.DatagramSocket;
import java.net.InetAddress;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.ExecutionException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** A member whose UDP endpoint another program holds fails at once, naming the endpoint and the fix. */
@Timeout(60)
class PortTakenTest {
    @TempDir
    Path aeron;

    @Test
    void aTakenPortIsNamed() throws Exception {
        CommsConfig cfg = GroupHarness.config(Transport.UDP, aeron).withTimeouts(5_000, 5_000);
        try (DatagramSocket squatter = new DatagramSocket(0, InetAddress.getLoopbackAddress())) {
            String taken = "127.0.0.1:" + squatter.getLocalPort();
            List<String> eps = List.of(taken, "127.0.0.1:" + GroupHarness.freeUdpPort());
            try (EmbeddedMediaDriver driver = EmbeddedMediaDriver.acquire(cfg, GroupHarness.jobKey("port"), 2, 2, 0)) {
                ExecutionException e = assertThrows(ExecutionException.class,
                        () -> GroupHarness.runOn(cfg, driver, eps, 2, c -> null));
                Throwable cause = e.getCause();
                assertTrue(cause instanceof CommsException, "a comms error, not " + cause);
                assertTrue(cause.getMessage().contains(taken), cause.getMessage());
                System.out.println("taken port: " + cause.getMessage());
            }
        }
    }
}
