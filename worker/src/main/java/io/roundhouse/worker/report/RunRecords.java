package io.roundhouse.worker.report;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.roundhouse.worker.UserException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A run folder read back: the resolved config ({@code config.conf}), the summary ({@code summary.json},
 * absent while a run is going or when it failed) and the records of {@code metrics.jsonl} by type
 * ({@code placement}, {@code train} per step, {@code eval} per evaluation, {@code hyper} per
 * Self-Tuning round), each in file order.
 *
 * <p>A malformed line is refused with its number; only the last line may be cut short without a
 * newline (the run is still writing it), and it is then left out and counted in {@link #partialLines}.
 */
final class RunRecords {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** The run's label in the report: the folder's name, or more of its path where two runs share a name. */
    public final String name;
    /** The run folder. */
    public final Path dir;
    /** {@code key -> value} as {@code config.conf} gives them; empty when it is missing. */
    public final Map<String, String> config;
    /** {@code summary.json}, or null when there is none. */
    public final JsonNode summary;
    /** The first record: the experts each worker hosts ({@code expertsByWorker}); null in a run without one. */
    public final JsonNode placement;
    /** One record per step, in step order. */
    public final List<JsonNode> train = new ArrayList<>();
    /** One record per evaluation (validation, test, a language model's tuning split). */
    public final List<JsonNode> eval = new ArrayList<>();
    /** One record per Self-Tuning round. */
    public final List<JsonNode> hyper = new ArrayList<>();
    /** {@code roundhouse early-exit}: one record per λ of its sweep, and the full-depth reference. */
    public final List<JsonNode> earlyExit = new ArrayList<>();
    public final List<JsonNode> earlyExitReference = new ArrayList<>();
    /** 1 when the last line was cut short (left out), else 0. */
    public final int partialLines;

    private RunRecords(Path dir, String name, Map<String, String> config, JsonNode summary, JsonNode placement,
                       List<JsonNode> records, int partialLines) {
        this.dir = dir;
        this.name = name;
        this.config = config;
        this.summary = summary;
        this.placement = placement;
        for (JsonNode r : records) {
            switch (r.path("type").asText()) {
                case "train" -> train.add(r);
                case "eval" -> eval.add(r);
                case "hyper" -> hyper.add(r);
                case "earlyExit" -> earlyExit.add(r);
                case "earlyExitReference" -> earlyExitReference.add(r);
                default -> {
                    // placement (kept above) and record types a later version adds
                }
            }
        }
        this.partialLines = partialLines;
    }

    /**
     * Reads the runs in {@code dirs}, each labelled with its folder's name, or with as many of the
     * path's last names as tell it from the others (runs/a/run-1 and runs/b/run-1: a/run-1, b/run-1).
     *
     * @throws UserException naming the folder or the line and what to do, when one is not a run
     *                       folder or a file in it cannot be read
     */
    static List<RunRecords> read(List<Path> dirs) {
        List<Path> paths = dirs.stream().map(d -> d.toAbsolutePath().normalize()).toList();
        List<RunRecords> runs = new ArrayList<>();
        for (int k = 0; k < dirs.size(); k++) {
            Path p = paths.get(k);
            int depth = 1;
            while (depth < p.getNameCount() && clash(paths, k, depth)) {
                depth++;
            }
            String label = p.getNameCount() == 0 ? p.toString() : p.subpath(p.getNameCount() - depth, p.getNameCount()).toString();
            if (paths.indexOf(p) != k) {  // the same folder twice
                label += " (" + (k + 1) + ")";
            }
            runs.add(read(dirs.get(k), label));
        }
        return runs;
    }

    /** Whether another path ends in the same {@code depth} names as {@code paths[k]}. */
    private static boolean clash(List<Path> paths, int k, int depth) {
        Path p = paths.get(k);
        for (int j = 0; j < paths.size(); j++) {
            Path q = paths.get(j);
            if (j != k && !q.equals(p) && q.getNameCount() >= depth && p.getNameCount() >= depth
                    && q.subpath(q.getNameCount() - depth, q.getNameCount())
                    .equals(p.subpath(p.getNameCount() - depth, p.getNameCount()))) {
                return true;
            }
        }
        return false;
    }

    private static RunRecords read(Path dir, String label) {
        if (!Files.isDirectory(dir)) {
            throw new UserException(UserException.USAGE, dir + ": " + (Files.exists(dir) ? "not a folder" : "no such folder")
                    + "; give a run folder (runs/run-..., the folder holding metrics.jsonl)");
        }
        Path metrics = dir.resolve("metrics.jsonl");
        if (!Files.isRegularFile(metrics)) {
            throw new UserException(UserException.USAGE, dir + " is not a run folder: it has no metrics.jsonl; give a "
                    + "run folder (runs/run-..., where a training run writes config.conf and metrics.jsonl)");
        }
        String text = readText(metrics);
        List<JsonNode> records = new ArrayList<>();
        JsonNode placement = null;
        int partial = 0;
        int start = 0;
        for (int line = 1; start < text.length(); line++) {
            int end = text.indexOf('\n', start);
            boolean last = end < 0;
            String s = text.substring(start, last ? text.length() : end);
            start = last ? text.length() : end + 1;
            if (s.isBlank()) {
                continue;
            }
            JsonNode r;
            try {
                r = JSON.readTree(s);
            } catch (JsonProcessingException e) {
                if (last) {  // no newline yet: the run is writing this line now
                    partial = 1;
                    break;
                }
                throw badLine(metrics, line, "is not JSON (" + e.getOriginalMessage() + ")");
            }
            if (!r.isObject() || !r.path("type").isTextual()) {
                throw badLine(metrics, line, "is not a record (a JSON object with a \"type\")");
            }
            if (r.path("type").asText().equals("placement")) {
                placement = r;
            } else if (r.path("type").asText().equals("train") && !r.path("step").isNumber()) {
                throw badLine(metrics, line, "is a train record without a step");
            }
            records.add(r);
        }
        return new RunRecords(dir, label, readConfig(dir.resolve("config.conf")), readSummary(dir.resolve("summary.json")),
                placement, records, partial);
    }

    private static UserException badLine(Path file, int line, String what) {
        return new UserException(UserException.USAGE, file + " line " + line + " " + what
                + "; the file is damaged: report on an intact copy of the run, or delete that line");
    }

    private static String readText(Path file) {
        try {
            return Files.readString(file, StandardCharsets.UTF_8);
        } catch (java.nio.charset.MalformedInputException e) {
            throw new UserException(UserException.USAGE, file + " is not UTF-8 text; the file is damaged: report on "
                    + "an intact copy of the run", e);
        } catch (IOException e) {
            throw new UserException(UserException.USAGE, "cannot read " + file + ": " + UserException.reason(e)
                    + " (check its permissions)", e);
        }
    }

    /** {@code key = value} lines; comments ({@code #}) and blank lines skipped. */
    private static Map<String, String> readConfig(Path file) {
        Map<String, String> m = new LinkedHashMap<>();
        if (!Files.isRegularFile(file)) {
            return m;
        }
        for (String line : readText(file).split("\n")) {
            int eq = line.indexOf('=');
            if (!line.startsWith("#") && eq > 0) {
                m.put(line.substring(0, eq).trim(), line.substring(eq + 1).trim());
            }
        }
        return m;
    }

    private static JsonNode readSummary(Path file) {
        if (!Files.isRegularFile(file)) {
            return null;
        }
        try {
            return JSON.readTree(readText(file));
        } catch (JsonProcessingException e) {
            throw new UserException(UserException.USAGE, file + " is not JSON (" + e.getOriginalMessage()
                    + "); the file is damaged: report on an intact copy of the run, or delete it", e);
        }
    }

    /** Whether the run trained a language model (bits per byte) rather than a classifier (accuracy). */
    boolean languageModel() {
        String kind = config.get("model.kind");
        if (kind != null) {
            return kind.equals("lm");
        }
        return eval.stream().anyMatch(r -> r.has("bitsPerByte"));
    }
}
