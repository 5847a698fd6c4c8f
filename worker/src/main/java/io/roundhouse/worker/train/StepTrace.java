package io.roundhouse.worker.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.roundhouse.worker.config.ConfigException;
import io.roundhouse.worker.model.PhaseTimers;
import io.roundhouse.worker.parallel.WorkerGroup;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * The timelines of the steps {@code train.traceSteps} names: every worker records its phases as
 * intervals during a traced step (its {@link PhaseTimers} keep them), and after training they are
 * gathered at rank 0 as one {@code trace} record per step: {@code {type, step, workers: [{rank, events:
 * [[phase, start µs, length µs], …]}]}}, times in microseconds of the worker's wall clock (so the
 * workers' tracks line up as well as their hosts' clocks agree), the step itself as phase "step".
 * {@link io.roundhouse.worker.report.TraceFile} turns the records into {@code trace.json}.
 */
final class StepTrace {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final PhaseTimers.Phase[] PHASES = PhaseTimers.Phase.values();

    private final int[] steps;  // sorted
    // The wall clock to the microsecond (currentTimeMillis would shift one worker's track against
    // another's by up to a millisecond, a whole phase at these step times), read beside nanoTime.
    private final long nanosAtOrigin = System.nanoTime();
    private final long wallMicrosAtOrigin = wallMicros(Instant.now());

    private StepTrace(TreeSet<Integer> steps) {
        this.steps = steps.stream().mapToInt(Integer::intValue).toArray();
    }

    /**
     * The steps of {@code spec}: step numbers (the first step is 1) and ranges, comma-separated,
     * e.g. {@code 100}, {@code 100,200}, {@code 100-102}; empty: none.
     *
     * @throws ConfigException naming the key and the fix when it is not that
     */
    static StepTrace of(String spec) {
        TreeSet<Integer> steps = new TreeSet<>();
        for (String part : spec.split(",")) {
            String p = part.strip();
            if (p.isEmpty()) {
                continue;
            }
            try {
                int dash = p.indexOf('-', 1);
                int from = Integer.parseInt((dash < 0 ? p : p.substring(0, dash)).strip());
                int to = dash < 0 ? from : Integer.parseInt(p.substring(dash + 1).strip());
                if (from < 1 || to < from || to - from > 1000) {
                    throw new NumberFormatException();
                }
                for (int s = from; s <= to; s++) {
                    steps.add(s);
                }
            } catch (NumberFormatException e) {
                throw new ConfigException("train.traceSteps = " + spec + ": '" + p + "' is not a step (from 1) or a "
                        + "range A-B of at most 1001 steps; write e.g. 100 or 100,200 or 100-102");
            }
        }
        return new StepTrace(steps);
    }

    /** Whether step {@code step} (counted from 1) is traced. */
    boolean traces(int step) {
        return java.util.Arrays.binarySearch(steps, step) >= 0;  // no boxing: asked every step
    }

    /**
     * This worker's intervals of a traced step that ran [start, end) in System.nanoTime's terms, as
     * JSON: the compute thread's phases ({phase, start, nanos} triples) and the gradient comms
     * thread's bucket all-reduces ({bucket, start, nanos}; null without one), named
     * {@code bucket <k>}.
     */
    String events(long[] spans, long start, long end, long[] bucketSpans) {
        StringBuilder sb = new StringBuilder(64 + 24 * spans.length);
        sb.append("[[\"step\",").append(micros(start)).append(',').append((end - start) / 1000).append(']');
        for (int i = 0; i < spans.length; i += 3) {
            sb.append(",[\"").append(PHASES[(int) spans[i]].name().toLowerCase(java.util.Locale.ROOT)).append("\",")
                    .append(micros(spans[i + 1])).append(',').append(spans[i + 2] / 1000).append(']');
        }
        for (int i = 0; bucketSpans != null && i < bucketSpans.length; i += 3) {
            sb.append(",[\"").append(io.roundhouse.worker.report.TraceFile.BUCKET).append(bucketSpans[i]).append("\",").append(micros(bucketSpans[i + 1]))
                    .append(',').append(bucketSpans[i + 2] / 1000).append(']');
        }
        return sb.append(']').toString();
    }

    private static long wallMicros(Instant t) {
        return t.getEpochSecond() * 1_000_000 + t.getNano() / 1000;
    }

    private long micros(long nanos) {
        return wallMicrosAtOrigin + (nanos - nanosAtOrigin) / 1000;
    }

    /** Keeps this worker's {@code events} of step {@code step} until {@link #flush}. */
    void keep(int step, String events) {
        kept.add(Map.entry(step, events));
    }

    /**
     * After training: gathers every kept step's events at rank 0, which writes them as trace
     * records (a collective: every worker traced the same steps). Kept until now so that gathering
     * and writing them does not delay the next traced step on rank 0 alone (measured: tracing two
     * steps in a row, the second showed the first's write as 14 ms of waiting on the other worker).
     */
    void flush(WorkerGroup group, RunOutput output) {
        for (Map.Entry<Integer, String> e : kept) {
            Map<String, Object> timeline = record(group, e.getKey(), e.getValue());
            if (timeline != null && output.records()) {
                output.write(timeline);
            }
        }
        kept.clear();
    }

    private final List<Map.Entry<Integer, String>> kept = new ArrayList<>();

    /**
     * Gathers every worker's {@code events} at rank 0 (a collective: every worker calls it for the
     * same steps) and returns the step's record there, null elsewhere.
     */
    static Map<String, Object> record(WorkerGroup group, int step, String events) {
        List<String> all = group.gatherStrings(events);
        if (all == null) {
            return null;
        }
        List<Map<String, Object>> workers = new ArrayList<>();
        for (int r = 0; r < all.size(); r++) {
            Map<String, Object> w = new LinkedHashMap<>();
            w.put("rank", r);
            try {
                w.put("events", JSON.readValue(all.get(r), JsonNode.class));
            } catch (IOException e) {
                throw new UncheckedIOException("worker " + r + " sent an unreadable trace", e);
            }
            workers.add(w);
        }
        Map<String, Object> record = new LinkedHashMap<>();
        record.put("type", "trace");
        record.put("step", step);
        record.put("workers", workers);
        return record;
    }
}
