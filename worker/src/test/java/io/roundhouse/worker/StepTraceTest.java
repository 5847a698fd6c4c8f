package io.roundhouse.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.roundhouse.worker.config.ConfigException;
import io.roundhouse.worker.report.TraceFile;
import io.roundhouse.worker.train.Trainer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code train.traceSteps}: two workers trace steps 3 and 5 to 6; trace.json then holds, for each
 * worker and traced step, the step and its phases as complete events on the worker's tracks, every
 * phase inside its step and none overlapping another on the compute thread, and the dense
 * gradients' buckets one after another on the comms thread's track; tracing changes no
 * parameter; a malformed list is refused naming the key.
 */
@Timeout(120)
class StepTraceTest {
    @TempDir
    Path tmp;

    private Map<String, String> config(Path out, String trace) throws Exception {
        Map<String, String> m = new HashMap<>();
        m.put("data.dir", IdxFixtures.write(tmp.resolve("data"), 300, 40, 3).toString());
        m.put("data.validationExamples", "40");
        m.put("model.dim", "16");
        m.put("model.experts", "4");
        m.put("model.expertHidden", "12");
        m.put("train.maxSteps", "8");
        m.put("train.batchSize", "32");
        m.put("train.evalBatchSize", "20");
        m.put("checkpoint.everySteps", "0");
        m.put("output.dir", out.toString());
        m.put("backend", "cpu");
        m.put("train.traceSteps", trace);
        m.put("comms.overlap", "all");  // the gradient buckets on their comms thread's track
        return m;
    }

    @Test
    void twoWorkersTraceTheirPhases() throws Exception {
        List<Trainer.Result> traced = TrainerGroups.train(config(tmp.resolve("traced"), "3, 5-6"), 2, tmp.resolve("aeron"),
                "traced");
        List<Trainer.Result> plain = TrainerGroups.train(config(tmp.resolve("plain"), ""), 2, tmp.resolve("aeron"),
                "plain");
        assertEquals(plain.get(0).parameterDigest(), traced.get(0).parameterDigest(), "tracing changes nothing");
        Path run = traced.get(0).runDir();
        assertFalse(Files.exists(plain.get(0).runDir().resolve(TraceFile.FILE)), "no traced step, no trace.json");
        JsonNode doc = new ObjectMapper().readTree(run.resolve(TraceFile.FILE).toFile());
        Map<String, long[]> steps = new HashMap<>();   // "rank/step" -> [start, end]
        Map<String, TreeSet<long[]>> phases = new HashMap<>();  // [start, end, index of its name]
        List<String> nameOf = new java.util.ArrayList<>();
        Set<String> names = new TreeSet<>();
        Map<String, TreeSet<long[]>> buckets = new HashMap<>();  // the gradient comms thread's
        for (JsonNode e : doc.path("traceEvents")) {
            if (!e.path("ph").asText().equals("X")) {
                continue;
            }
            String key = e.path("pid").asInt() + "/" + e.path("args").path("step").asInt();
            long ts = e.path("ts").asLong();
            long end = ts + e.path("dur").asLong();
            if (e.path("cat").asText().equals("step")) {
                assertEquals(0, e.path("tid").asInt());
                steps.put(key, new long[] {ts, end});
            } else if (e.path("cat").asText().equals("all_reduce")) {
                assertEquals(2, e.path("tid").asInt(), "a bucket on the comms thread's track");
                assertTrue(e.path("name").asText().startsWith(TraceFile.BUCKET), e.toString());
                buckets.computeIfAbsent(key, k -> new TreeSet<>((a, b) -> Long.compare(a[0], b[0])))
                        .add(new long[] {ts, end});
            } else {
                assertEquals(1, e.path("tid").asInt());
                names.add(e.path("name").asText());
                nameOf.add(e.path("name").asText());
                phases.computeIfAbsent(key, k -> new TreeSet<>((a, b) -> a[0] != b[0] ? Long.compare(a[0], b[0])
                        : Long.compare(a[2], b[2]))).add(new long[] {ts, end, nameOf.size() - 1});
            }
        }
        assertEquals(Set.of("0/3", "1/3", "0/5", "1/5", "0/6", "1/6"), steps.keySet());
        assertTrue(names.containsAll(Set.of("embed", "route", "dispatch", "experts", "combine", "all_reduce", "optimizer")),
                names.toString());
        for (Map.Entry<String, TreeSet<long[]>> p : phases.entrySet()) {
            long[] step = steps.get(p.getKey());
            long last = step[0];
            String lastName = "";
            for (long[] span : p.getValue()) {
                // microsecond rounding: an interval may stick out of its neighbour or its step by 1 us
                assertTrue(span[0] >= step[0] - 1 && span[1] <= step[1] + 1, p.getKey() + ": a phase outside its step");
                assertTrue(span[0] >= last - 1, p.getKey() + ": " + nameOf.get((int) span[2]) + " starts "
                        + (last - span[0]) + " us before " + lastName + " ends, on the compute thread");
                last = span[1];
                lastName = nameOf.get((int) span[2]);
            }
        }
        assertEquals(steps.keySet(), buckets.keySet(), "each worker's traced steps have their gradient buckets");
        for (Map.Entry<String, TreeSet<long[]>> b : buckets.entrySet()) {
            long[] step = steps.get(b.getKey());
            long last = step[0];
            for (long[] span : b.getValue()) {
                assertTrue(span[0] >= last - 1 && span[1] <= step[1] + 1, b.getKey() + ": buckets one after another, "
                        + "inside their step");
                last = span[1];
            }
        }
        assertThrows(ConfigException.class, () -> TrainerGroups.train(config(tmp.resolve("bad"), "5-3"), 1,
                tmp.resolve("aeron"), "bad"));
    }
}
