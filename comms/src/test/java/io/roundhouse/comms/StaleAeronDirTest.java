package io.roundhouse.comms;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.aeron.driver.MediaDriver;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Aeron directories that killed runs leave behind are removed by the next driver started in
 * the same place once stale; a live driver's, a fresh one and folders that are not Roundhouse's
 * stay.
 */
@Timeout(60)
class StaleAeronDirTest {
    @TempDir
    Path base;

    @Test
    void deadRunsDirectoriesGoLiveAndForeignOnesStay() throws Exception {
        // A driver that stopped without deleting its directory, as a SIGKILLed JVM's does: its
        // heartbeat in cnc.dat stops.
        Path dead = base.resolve("roundhouse-killed-run");
        MediaDriver.Context ctx = new MediaDriver.Context().aeronDirectoryName(dead.toString())
                .dirDeleteOnStart(true).dirDeleteOnShutdown(false).warnIfDirectoryExists(false);
        MediaDriver.launchEmbedded(ctx).close();
        assertTrue(Files.exists(dead.resolve("cnc.dat")), "the dead driver's files are there");
        // A directory whose driver never wrote a heartbeat, last changed an hour ago.
        Path never = Files.createDirectories(base.resolve("roundhouse-never-started"));
        Files.writeString(never.resolve("loss-report.dat"), "x");
        Files.setLastModifiedTime(never, FileTime.from(Instant.now().minusSeconds(3600)));
        // One being set up right now, and folders that are not Roundhouse's.
        Path starting = Files.createDirectories(base.resolve("roundhouse-starting"));
        Path foreign = Files.createDirectories(base.resolve("aeron-someone-else"));
        Files.setLastModifiedTime(foreign, FileTime.from(Instant.now().minusSeconds(3600)));
        Path file = Files.writeString(base.resolve("roundhouse-a-file"), "x");
        Files.setLastModifiedTime(file, FileTime.from(Instant.now().minusSeconds(3600)));
        Thread.sleep(1_500);  // the dead heartbeat and the dead directory age past the threshold below
        Files.setLastModifiedTime(starting, FileTime.from(Instant.now()));

        // A live driver of this JVM in the same folder.
        CommsConfig cfg = CommsConfig.defaults(Transport.IPC, 7L).withAeronDirBase(base);
        try (EmbeddedMediaDriver live = EmbeddedMediaDriver.acquire(cfg, "live-job", 1, 2, 0)) {
            // Starting it swept with the production threshold (10 minutes): the hour-old one went,
            // the driver dead for seconds stays (a paused JVM's driver looks the same).
            assertFalse(Files.exists(never), "a stale directory without a driver is removed");
            assertTrue(Files.exists(dead.resolve("cnc.dat")), "a driver silent for less than the threshold stays");
            assertEquals(1, EmbeddedMediaDriver.sweepStale(base, TimeUnit.SECONDS.toMillis(1)));
            assertFalse(Files.exists(dead), "a dead driver's directory is removed");
            assertTrue(Files.exists(base.resolve("roundhouse-live-job").resolve("cnc.dat")), "the live driver's stays");
            assertTrue(Files.exists(starting), "a directory changed within the threshold stays");
            assertTrue(Files.exists(foreign), "another program's Aeron directory stays");
            assertTrue(Files.exists(file), "a file stays");
        }
        assertEquals(0, EmbeddedMediaDriver.sweepStale(base.resolve("none"), 1), "no folder: nothing to do");
    }
}
