package io.roundhouse.driver;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** What the launcher prints of a failed worker's last lines. */
class LocalLauncherCausesTest {
    @Test
    void anUncaughtExceptionIsSummedUpByItsHeadlineAndCausesNotItsFrames() {
        List<String> tail = new ArrayList<>(List.of("[epoch 1] step 40/100  loss 0.71",
                "07:01:02 INFO  Trainer - checkpoint at step 40",
                "Exception in thread \"main\" java.lang.IllegalStateException: the Aeron client is closed"));
        for (int i = 0; i < 40; i++) {
            tail.add("\tat io.aeron.Aeron.frame" + i + "(Aeron.java:" + i + ")");
        }
        tail.add("Caused by: io.aeron.exceptions.ConductorServiceTimeoutException: service interval exceeded");
        tail.add("\t... 12 more");
        assertEquals(List.of("Exception in thread \"main\" java.lang.IllegalStateException: the Aeron client is closed",
                "Caused by: io.aeron.exceptions.ConductorServiceTimeoutException: service interval exceeded"),
                LocalLauncher.causes(tail));
    }

    @Test
    void errorLinesAndLoggedExceptionsAreKeptTheLastEight() {
        List<String> tail = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            tail.add("error: worker 0: number " + i);
        }
        tail.add("java.io.UncheckedIOException: disk full");
        tail.add("  an indented line that mentions an Exception is a frame or a message, not a headline");
        List<String> got = LocalLauncher.causes(tail);
        assertEquals(8, got.size());
        assertEquals("error: worker 0: number 3", got.get(0));
        assertEquals("java.io.UncheckedIOException: disk full", got.get(7));
    }
}
