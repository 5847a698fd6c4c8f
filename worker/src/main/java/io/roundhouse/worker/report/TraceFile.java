package io.roundhouse.worker.report;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.roundhouse.worker.UserException;
import io.roundhouse.worker.train.MetricsWriter;
import io.roundhouse.worker.train.RunFiles;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A run's traced steps ({@code train.traceSteps}: the {@code trace} records of its
 * {@code metrics.jsonl}) as {@code trace.json} in Chrome's trace-event format, which Perfetto
 * (ui.perfetto.dev) and chrome://tracing open: a process per worker, with a track for its steps,
 * one for the phases its compute thread ran and one for the dense-gradient buckets its comms
 * thread summed meanwhile, each a complete event ({@code ph: X}) in microseconds.
 */
public final class TraceFile {
    /** The file {@link #writeFor} writes in the run folder. */
    public static final String FILE = "trace.json";
    private static final ObjectMapper JSON = new ObjectMapper();

    private TraceFile() {
    }

    /**
     * Writes {@code runDir/trace.json} (atomically) when the run traced any step, and returns it;
     * null when it traced none.
     */
    public static Path writeFor(Path runDir) {
        Path metrics = runDir.resolve("metrics.jsonl");
        List<JsonNode> traces = new ArrayList<>();
        try {
            if (!Files.exists(metrics)) {
                return null;
            }
            for (String line : Files.readAllLines(metrics, StandardCharsets.UTF_8)) {
                if (!line.contains("\"type\":\"trace\"")) {
                    continue;
                }
                try {
                    JsonNode r = JSON.readTree(line);
                    if ("trace".equals(r.path("type").asText())) {
                        traces.add(r);
                    }
                } catch (IOException e) {
                    // a line cut short by a crash: its step is left out
                }
            }
        } catch (IOException e) {
            throw new UserException(UserException.RUNTIME, "cannot read " + metrics + ": " + e.getMessage(), e);
        }
        if (traces.isEmpty()) {
            return null;
        }
        Path out = runDir.resolve(FILE);
        RunFiles.writeAtomically(out, MetricsWriter.toJson(events(traces)) + "\n");
        return out;
    }

    /** The name prefix of a gradient bucket's all-reduce: drawn on its worker's comms-thread track. */
    public static final String BUCKET = "bucket ";

    /** The trace-event document of {@code traces} (trace records). */
    static Map<String, Object> events(List<JsonNode> traces) {
        List<Map<String, Object>> events = new ArrayList<>();
        java.util.Set<Integer> named = new java.util.TreeSet<>();
        for (JsonNode t : traces) {
            int step = t.path("step").asInt();
            for (JsonNode w : t.path("workers")) {
                int rank = w.path("rank").asInt();
                if (named.add(rank)) {
                    events.add(meta("process_name", rank, null, "worker " + rank));
                    events.add(meta("thread_name", rank, 0, "steps"));
                    events.add(meta("thread_name", rank, 1, "compute thread"));
                    events.add(meta("thread_name", rank, 2, "gradient comms thread"));
                }
                for (JsonNode e : w.path("events")) {
                    String name = e.path(0).asText();
                    Map<String, Object> x = new LinkedHashMap<>();
                    x.put("name", name.equals("step") ? "step " + step : name);
                    boolean bucket = name.startsWith(BUCKET);
                    x.put("cat", name.equals("step") ? "step" : bucket ? "all_reduce" : "phase");
                    x.put("ph", "X");
                    x.put("ts", e.path(1).asLong());
                    x.put("dur", e.path(2).asLong());
                    x.put("pid", rank);
                    x.put("tid", name.equals("step") ? 0 : bucket ? 2 : 1);
                    x.put("args", Map.of("step", step));
                    events.add(x);
                }
            }
        }
        Map<String, Object> doc = new LinkedHashMap<>();
        doc.put("displayTimeUnit", "ms");
        doc.put("traceEvents", events);
        return doc;
    }

    private static Map<String, Object> meta(String what, int pid, Integer tid, String name) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("name", what);
        m.put("ph", "M");
        m.put("pid", pid);
        if (tid != null) {
            m.put("tid", tid);
        }
        m.put("args", Map.of("name", name));
        return m;
    }
}
