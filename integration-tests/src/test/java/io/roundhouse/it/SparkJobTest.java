package io.roundhouse.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.roundhouse.driver.RoundhouseCli;
import io.roundhouse.worker.IdxFixtures;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code roundhouse spark} on an embedded {@code local[2]}: two workers as a barrier stage, rank 0
 * reporting to the driver, which writes the run directory; the result equals the same job run by
 * the local launcher (same parameter digest).
 */
@Timeout(300)
class SparkJobTest {
    @TempDir
    Path tmp;

    private static int cli(StringWriter out, StringWriter err, String... args) {
        int code = RoundhouseCli.run(args, new PrintWriter(out, true), new PrintWriter(err, true));
        System.out.print(out);
        System.err.print(err);
        return code;
    }

    private static String[] args(String command, Path data, Path runs) {
        return new String[] {command, "data.dir=" + data, "output.dir=" + runs, "data.validationExamples=100",
            "model.dim=16", "model.experts=4", "model.expertHidden=16", "train.batchSize=40", "train.warmupSteps=5",
            "train.evalBatchSize=50", "log.everySteps=5", "backend=cpu", "workers=2", "train.maxSteps=15",
            "comms.timeoutMs=20000"};
    }

    private static Path onlyRun(Path runs) throws Exception {
        try (Stream<Path> s = Files.list(runs)) {
            List<Path> all = s.toList();
            assertEquals(1, all.size(), all.toString());
            return all.get(0);
        }
    }

    @Test
    void localTwoWorkersTrainAndTheDriverWritesTheRun() throws Exception {
        Path data = IdxFixtures.write(tmp.resolve("data"), 600, 100, 6);
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        assertEquals(0, cli(out, err, args("spark", data, tmp.resolve("spark"))), err.toString());
        assertTrue(out.toString().contains("2 workers as a barrier stage on local[2]"), out.toString());
        assertTrue(out.toString().contains("step 15  loss"), "progress from the driver: " + out);
        Path run = onlyRun(tmp.resolve("spark"));
        ObjectMapper json = new ObjectMapper();
        List<String> lines = Files.readAllLines(run.resolve("metrics.jsonl"));
        // 500 training examples, batch 40: 12 steps an epoch, so 15 steps end in the second epoch.
        assertEquals(1 + 15 + 1 + 2 + 1, lines.size(), "placement, 15 steps, checkpoint, 2 validations, test: " + lines);
        assertTrue(Files.exists(run.resolve("checkpoints/step-00000015/manifest.json")), "the final checkpoint");
        double first = json.readTree(lines.get(1)).get("loss").asDouble();
        double last = json.readTree(lines.get(15)).get("loss").asDouble();
        assertTrue(last < first, "loss falls: " + first + " -> " + last);
        JsonNode summary = json.readTree(run.resolve("summary.json").toFile());
        assertEquals(15, summary.get("steps").asInt());

        // The same job through the local launcher: the same bits.
        StringWriter out2 = new StringWriter();
        assertEquals(0, cli(out2, new StringWriter(), args("train", data, tmp.resolve("launcher"))));
        JsonNode other = json.readTree(onlyRun(tmp.resolve("launcher")).resolve("summary.json").toFile());
        assertEquals(other.get("parameterDigest").asText(), summary.get("parameterDigest").asText(),
                "Spark tasks and launched JVMs train the same model");
    }
}
