package io.roundhouse.driver.bench;

import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** The files that come with Roundhouse are found from the code's own location, whatever the working folder. */
class InstallationTest {
    @Test
    void findsTheShippedFilesAndNothingElse() {
        Path lm = Installation.file("conf/kjv-moe-lm.conf");
        assertTrue(lm != null && Files.isRegularFile(lm) && lm.toString().endsWith("conf/kjv-moe-lm.conf"), "" + lm);
        Path twin = Installation.file(LmBench.TWIN);
        assertTrue(twin != null && twin.getFileName().toString().equals("roundhouse_twin.py"), "" + twin);
        assertNull(Installation.file("conf/no-such-file.conf"));
    }
}
