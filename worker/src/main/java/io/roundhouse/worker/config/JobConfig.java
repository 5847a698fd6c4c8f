package io.roundhouse.worker.config;

import io.roundhouse.worker.model.Hyper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A resolved, validated, immutable job configuration: defaults, then a config file, then
 * command-line overrides. Every value is parsed and checked once, here; a bad one stops the job
 * before anything runs or is written.
 *
 * <p>File format: one {@code key = value} per line; {@code #} starts a comment line; blank lines are
 * ignored. Unknown and repeated keys are errors.
 */
public final class JobConfig {
    private final Map<ConfigKey<?>, Object> values;
    private final Map<ConfigKey<?>, String> texts;
    private final Map<ConfigKey<?>, String> sources;

    private JobConfig(Map<ConfigKey<?>, Object> values, Map<ConfigKey<?>, String> texts, Map<ConfigKey<?>, String> sources) {
        this.values = values;
        this.texts = texts;
        this.sources = sources;
    }

    /** All defaults. */
    public static JobConfig defaults() {
        return resolve(Map.of(), "default", Map.of());
    }

    /**
     * @param file      a config file, or null for defaults only
     * @param overrides {@code key -> value} from the command line (applied after the file)
     */
    public static JobConfig load(Path file, Map<String, String> overrides) {
        Map<String, String> fromFile = file == null ? Map.of() : readFile(file);
        return resolve(fromFile, file == null ? "default" : file.toString(), overrides);
    }

    /** Defaults plus overrides, no file. */
    public static JobConfig of(Map<String, String> overrides) {
        return resolve(Map.of(), "default", overrides);
    }

    private static Map<String, String> readFile(Path file) {
        List<String> lines;
        try {
            lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            String why = e instanceof java.nio.file.NoSuchFileException ? "no such file"
                    : io.roundhouse.worker.UserException.reason(e);
            throw new ConfigException("cannot read config file " + file + ": " + why
                    + " (check the path; the shipped configs are under conf/)");
        }
        Map<String, String> out = new LinkedHashMap<>();
        for (int n = 0; n < lines.size(); n++) {
            String line = lines.get(n).trim();
            if (line.isEmpty() || line.startsWith("#")) {
                continue;
            }
            int eq = line.indexOf('=');
            if (eq <= 0) {
                throw new ConfigException(file + ":" + (n + 1) + ": expected 'key = value', got '" + line + "'");
            }
            String key = line.substring(0, eq).trim();
            String value = line.substring(eq + 1).trim();
            if (out.containsKey(key)) {
                throw new ConfigException(file + ":" + (n + 1) + ": key " + key + " is set twice");
            }
            checkKnown(key, file + ":" + (n + 1));
            out.put(key, value);
        }
        return out;
    }

    private static void checkKnown(String key, String where) {
        if (ConfigKeys.byName(key) == null) {
            throw new ConfigException(where + ": unknown key '" + key + "'" + suggestion(key)
                    + " (run 'roundhouse config' to list every key)");
        }
    }

    private static String suggestion(String key) {
        String best = null;
        int bestDistance = Integer.MAX_VALUE;
        for (ConfigKey<?> k : ConfigKeys.ALL) {
            int d = editDistance(key.toLowerCase(), k.name().toLowerCase());
            if (d < bestDistance) {
                bestDistance = d;
                best = k.name();
            }
        }
        return bestDistance <= Math.max(2, key.length() / 3) ? "; did you mean " + best + "?" : "";
    }

    private static int editDistance(String a, String b) {
        int[] prev = new int[b.length() + 1];
        int[] cur = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) {
            prev[j] = j;
        }
        for (int i = 1; i <= a.length(); i++) {
            cur[0] = i;
            for (int j = 1; j <= b.length(); j++) {
                int sub = prev[j - 1] + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1);
                cur[j] = Math.min(sub, Math.min(prev[j] + 1, cur[j - 1] + 1));
            }
            int[] t = prev;
            prev = cur;
            cur = t;
        }
        return prev[b.length()];
    }

    private static JobConfig resolve(Map<String, String> fromFile, String fileName, Map<String, String> overrides) {
        for (String key : overrides.keySet()) {
            checkKnown(key, "command line");
        }
        Map<ConfigKey<?>, Object> values = new LinkedHashMap<>();
        Map<ConfigKey<?>, String> texts = new LinkedHashMap<>();
        Map<ConfigKey<?>, String> sources = new HashMap<>();
        for (ConfigKey<?> k : ConfigKeys.ALL) {
            String text = k.defaultText();
            String source = "default";
            if (fromFile.containsKey(k.name())) {
                text = fromFile.get(k.name());
                source = fileName;
            }
            if (overrides.containsKey(k.name())) {
                text = overrides.get(k.name());
                source = "command line";
            }
            Object v;
            try {
                refuseControlCharacters(k, text);
                v = k.parse(text);
            } catch (ConfigException e) {
                throw new ConfigException(e.getMessage() + " [set in " + source + "]");
            }
            values.put(k, v);
            texts.put(k, text.trim());
            sources.put(k, source);
        }
        JobConfig c = new JobConfig(values, texts, sources);
        c.checkTogether();
        return c;
    }

    /**
     * No setting's value holds a control character (a NUL cannot even be part of a path): one is a
     * typo or a broken file, named here instead of failing wherever the value is first used.
     */
    private static void refuseControlCharacters(ConfigKey<?> k, String text) {
        for (int i = 0; i < text.length(); i++) {
            char ch = text.charAt(i);
            if (ch < 0x20 && ch != '\t' || ch == 0x7F) {
                throw new ConfigException(k.name() + " = '" + text.replaceAll("\\p{Cntrl}", "?") + "': character "
                        + (i + 1) + " is a control character (U+" + String.format("%04X", (int) ch) + "); "
                        + "retype the value");
            }
        }
    }

    /** Rules that involve more than one key. */
    private void checkTogether() {
        int experts = get(ConfigKeys.MODEL_EXPERTS);
        int topK = get(ConfigKeys.MODEL_TOP_K);
        if (topK > experts) {
            throw new ConfigException("model.topK = " + topK + " is larger than model.experts = " + experts
                    + ": each token can go to at most every expert once; lower model.topK or raise model.experts");
        }
        int term = get(ConfigKeys.COMMS_TERM_LENGTH_BYTES);
        if (Integer.bitCount(term) != 1) {
            throw new ConfigException("comms.termLengthBytes = " + term + " is not a power of two; use e.g. "
                    + Integer.highestOneBit(term) + " or " + (Integer.highestOneBit(term) << 1));
        }
        List<String> tuned = get(ConfigKeys.STN_TUNE);
        if (!tuned.isEmpty() && get(ConfigKeys.STN_LAYERS).isEmpty()) {
            throw new ConfigException("stn.tune is set but stn.layers is empty: the hypergradient flows only through "
                    + "the layers' responses; list at least one of embed, router, head");
        }
        for (String id : tuned) {
            Hyper h = Hyper.byId(id);
            try {
                h.unconstrained(get(h.initialKey()).doubleValue());
            } catch (IllegalArgumentException e) {
                throw new ConfigException("stn.tune includes " + id + ", but " + e.getMessage());
            }
        }
    }

    @SuppressWarnings("unchecked")
    public <T> T get(ConfigKey<T> key) {
        Object v = values.get(key);
        if (v == null) {
            throw new IllegalArgumentException("key " + key + " is not registered in ConfigKeys.ALL");
        }
        return (T) v;
    }

    /** This configuration with more overrides applied (values given as text, validated). */
    public JobConfig with(Map<String, String> more) {
        Map<String, String> all = new LinkedHashMap<>();
        texts.forEach((k, v) -> all.put(k.name(), v));
        all.putAll(more);
        return of(all);
    }

    /** The resolved configuration in the config-file format, each key with its doc and source. */
    public String describe() {
        StringBuilder sb = new StringBuilder();
        for (ConfigKey<?> k : ConfigKeys.ALL) {
            sb.append("# ").append(k.doc());
            if (!"default".equals(sources.get(k))) {
                sb.append(" [from ").append(sources.get(k)).append("]");
            }
            sb.append('\n').append(k.name()).append(" = ").append(texts.get(k)).append('\n');
        }
        return sb.toString();
    }

    /** {@code key -> value text}, in key order. */
    public Map<String, String> asMap() {
        Map<String, String> m = new LinkedHashMap<>();
        texts.forEach((k, v) -> m.put(k.name(), v));
        return m;
    }
}
