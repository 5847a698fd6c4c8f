package io.roundhouse.driver;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.roundhouse.comms.PeerException;
import io.roundhouse.kernels.BackendException;
import io.roundhouse.worker.UserException;
import io.roundhouse.worker.checkpoint.CheckpointException;
import io.roundhouse.worker.config.ConfigException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.List;
import org.junit.jupiter.api.Test;

/** How the command line reports a failure: the user's error in one line with its exit code, a bug with its trace. */
class RoundhouseCliReportTest {
    private static String[] report(Throwable t) {
        StringWriter err = new StringWriter();
        int code = RoundhouseCli.report(t, new PrintWriter(err, true));
        return new String[] {String.valueOf(code), err.toString()};
    }

    @Test
    void theUsersErrorsAreOneLineWithTheirExitCode() {
        Object[][] cases = {
            {new ConfigException("model.dim = 'x': not an integer"), 2},
            {new CheckpointException("checkpoint shard s is corrupt"), 2},
            {CheckpointException.notWritten("cannot write checkpoint file f: No space left on device", null), 1},
            {UserException.cannotWrite("metrics.jsonl", new java.io.IOException("No space left on device")), 1},
            {new BackendException("backend = cuda, but no GPU"), 2},
            {new PeerException(List.of(1), "comms allReduce #3: rank 1 went away"), 1},
            // a Spark job's failure (or any wrapper) carrying a task's error
            {new RuntimeException("Job aborted", new ConfigException("data.validationExamples = 9 leaves nothing")), 2},
        };
        for (Object[] c : cases) {
            Throwable t = (Throwable) c[0];
            Throwable user = t.getClass() == RuntimeException.class ? t.getCause() : t;
            String[] r = report(t);
            assertEquals(String.valueOf(c[1]), r[0], t.toString());
            assertEquals("error: " + user.getMessage() + System.lineSeparator(), r[1]);
        }
    }

    @Test
    void aBugSaysSoAndPrintsItsTrace() {
        String[] r = report(new NullPointerException("boom"));
        assertEquals("1", r[0]);
        assertTrue(r[1].startsWith(RoundhouseCli.BUG_HEADLINE), r[1]);
        assertTrue(r[1].contains("java.lang.NullPointerException: boom") && r[1].contains("\tat "), r[1]);
        // an IllegalArgumentException is no longer taken for a usage error
        String[] iae = report(new IllegalArgumentException("slice outside"));
        assertEquals("1", iae[0]);
        assertTrue(iae[1].startsWith(RoundhouseCli.BUG_HEADLINE) && iae[1].contains("\tat "), iae[1]);
    }

    @Test
    void picocliUsageErrorsAreTwoLines() {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = RoundhouseCli.run(new String[] {"train", "--bogus"}, new PrintWriter(out, true),
                new PrintWriter(err, true));
        assertEquals(2, code);
        assertEquals(List.of("error: Unknown option: '--bogus'", "  see 'roundhouse train --help'"),
                err.toString().lines().toList());
    }
}
