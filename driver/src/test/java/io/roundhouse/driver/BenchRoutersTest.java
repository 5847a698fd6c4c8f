package io.roundhouse.driver;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code roundhouse bench routers} on a tiny language model: every arm runs and is reported, at
 * equal active width, and a second invocation reuses the finished runs.
 */
@Timeout(300)
class BenchRoutersTest {
    @TempDir
    Path tmp;

    @Test
    void comparesEveryArmThenReusesTheFinishedRuns() throws Exception {
        StringBuilder text = new StringBuilder();
        for (int i = 0; text.length() < 30_000; i++) {
            text.append(i).append(" in the beginning was the word, and the word was with God.\n");
        }
        Path out = tmp.resolve("cmp");
        List<String> args = new ArrayList<>(List.of("bench", "routers", "--seeds", "1", "--fraction", "0.05", "--out",
                out.toString(), "model.kind=lm", "data.text=" + Files.writeString(tmp.resolve("t.txt"), text),
                "data.seqLen=16", "model.dim=16", "model.heads=2", "model.experts=4", "model.topK=2",
                "model.expertHidden=16", "model.activation=swiglu", "model.norm=rmsnorm", "model.capacityFactor=0",
                "model.dropout.block=0", "train.batchSize=8", "train.epochs=1", "backend=cpu"));
        StringWriter o = new StringWriter();
        StringWriter e = new StringWriter();
        assertEquals(0, RoundhouseCli.run(args.toArray(String[]::new), new PrintWriter(o, true), new PrintWriter(e, true)),
                e.toString());
        JsonNode r = new ObjectMapper().readTree(out.resolve("results.json").toFile());
        JsonNode arms = r.get("arms");
        assertEquals(List.of("softmax", "switch", "sigmoid", "noisy", "dense-to-sparse", "expert-choice", "shared", "fine",
                "dense"), names(arms));
        for (String arm : names(arms)) {
            double v = arms.get(arm).get("mean").asDouble();
            assertTrue(v > 0 && v < 9, arm + ": bits per byte of a byte model that trained a little: " + v);
            assertTrue(arms.get(arm).get("tokensPerSecond").asDouble() > 0, arm);
        }
        assertTrue(arms.get("switch").get("droppedPercent").asDouble() >= 0);
        assertTrue(Double.isNaN(arms.get("dense").get("loadMaxOverMean").asDouble())
                || arms.get("dense").get("loadMaxOverMean").isNull() || arms.get("dense").get("loadMaxOverMean")
                .asText().equals("NaN"), "the dense model has no experts to balance");
        assertTrue(arms.get("sigmoid").get("loadMaxOverMean").asDouble() >= 1);
        assertEquals(1.0, arms.get("expert-choice").get("loadMaxOverMean").asDouble(), 1e-9, "expert choice balances");
        double perToken = arms.get("dense-to-sparse").get("expertsPerToken").asDouble();
        assertTrue(perToken >= 1 && perToken <= 4, "dense-to-sparse: experts per token at the end " + perToken);
        assertTrue(Files.readString(out.resolve("report.md")).contains("| sigmoid |"));

        // Each arm's run folder holds one finished run; a second invocation trains none again.
        long before;
        try (var s = Files.walk(out)) {
            before = s.filter(p -> p.getFileName().toString().equals("summary.json")).count();
        }
        assertEquals(9, before);
        assertEquals(0, RoundhouseCli.run(args.toArray(String[]::new), new PrintWriter(new StringWriter(), true),
                new PrintWriter(new StringWriter(), true)));
        try (var s = Files.walk(out)) {
            assertEquals(before, s.filter(p -> p.getFileName().toString().equals("summary.json")).count(),
                    "finished runs are reused, not run again");
        }
        // --arms picks some; an arm the model has not is refused in one line.
        List<String> two = new ArrayList<>(args);
        two.addAll(List.of("--arms", "noisy,dense"));
        assertEquals(0, RoundhouseCli.run(two.toArray(String[]::new), new PrintWriter(new StringWriter(), true),
                new PrintWriter(new StringWriter(), true)));
        assertEquals(List.of("noisy", "dense"), names(new ObjectMapper().readTree(out.resolve("results.json").toFile())
                .get("arms")));
        List<String> bad = new ArrayList<>(args);
        bad.addAll(List.of("--arms", "nosiy"));
        StringWriter err = new StringWriter();
        assertEquals(2, RoundhouseCli.run(bad.toArray(String[]::new), new PrintWriter(new StringWriter(), true),
                new PrintWriter(err, true)));
        assertTrue(err.toString().contains("--arms: no arm 'nosiy' for this model; choose from softmax, switch"),
                err.toString());
    }

    private static List<String> names(JsonNode arms) {
        List<String> n = new ArrayList<>();
        arms.fieldNames().forEachRemaining(n::add);
        return n;
    }
}
