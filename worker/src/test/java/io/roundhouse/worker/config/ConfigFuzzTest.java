package io.roundhouse.worker.config;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.roundhouse.kernels.BackendException;
import io.roundhouse.worker.UserException;
import io.roundhouse.worker.train.Trainer;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * The config parser fuzzed with Jazzer's coverage guidance ({@code scripts/fuzz}): a config file
 * of any bytes, and a command-line override of any value for any key, either resolve and pass the
 * pre-flight checks or fail with a user error (one line naming the key and the fix), never another
 * exception. A plain test run replays the inputs kept under this class's {@code Inputs} folder.
 */
class ConfigFuzzTest {
    private static final Path FILE = temp();
    private static final PrintStream QUIET = new PrintStream(OutputStream.nullOutputStream());

    private static Path temp() {
        try {
            Path dir = Files.createTempDirectory("roundhouse-config-fuzz");
            dir.toFile().deleteOnExit();
            return dir.resolve("fuzzed.conf");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @FuzzTest(maxDuration = "25s")
    void anyConfigFileResolvesOrIsRefusedByName(byte[] text) throws IOException {
        Files.write(FILE, text);
        try {
            new Trainer(JobConfig.load(FILE, Map.of()), QUIET).preflight();
        } catch (UserException | BackendException expected) {
            // ConfigException and the data's errors: one line naming the problem
        }
    }

    @FuzzTest(maxDuration = "25s")
    void anyValueOfAnyKeyResolvesOrIsRefusedByName(FuzzedDataProvider d) {
        ConfigKey<?> key = ConfigKeys.ALL.get(d.consumeInt(0, ConfigKeys.ALL.size() - 1));
        ConfigKey<?> other = ConfigKeys.ALL.get(d.consumeInt(0, ConfigKeys.ALL.size() - 1));
        String otherValue = d.consumeString(40);
        String value = d.consumeRemainingAsString();
        try {
            new Trainer(JobConfig.of(Map.of(key.name(), value)).with(Map.of(other.name(), otherValue)), QUIET)
                    .preflight();
        } catch (UserException | BackendException expected) {
            // named
        }
    }
}
