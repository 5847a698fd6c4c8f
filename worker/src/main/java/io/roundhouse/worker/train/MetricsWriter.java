package io.roundhouse.worker.train;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.roundhouse.worker.UserException;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/** Appends one JSON object per line to {@code metrics.jsonl}. */
public final class MetricsWriter implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final BufferedWriter out;
    private final Path file;
    private char[] chars = new char[4096];

    public MetricsWriter(Path file) {
        this.file = file;
        try {
            this.out = Files.newBufferedWriter(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw UserException.cannotWrite(file, e);
        }
    }

    public void write(Map<String, Object> record) {
        try {
            out.write(JSON.writeValueAsString(record));
            out.write('\n');
        } catch (IOException e) {
            throw UserException.cannotWrite(file, e);
        }
    }

    /** {@code json}, one JSON object, as the next line, through a reused char buffer (no allocation once grown). */
    public void writeLine(CharSequence json) {
        int n = json.length();
        if (chars.length < n) {
            chars = new char[Math.max(n, 2 * chars.length)];
        }
        for (int i = 0; i < n; i++) {
            chars[i] = json.charAt(i);
        }
        try {
            out.write(chars, 0, n);
            out.write('\n');
        } catch (IOException e) {
            throw UserException.cannotWrite(file, e);
        }
    }

    /** A JSON object back into a map (for a sink that takes records as maps). */
    @SuppressWarnings("unchecked")
    static Map<String, Object> parse(CharSequence json) {
        try {
            return JSON.readValue(json.toString(), Map.class);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public void flush() {
        try {
            out.flush();
        } catch (IOException e) {
            throw UserException.cannotWrite(file, e);
        }
    }

    @Override
    public void close() {
        try {
            out.close();
        } catch (IOException e) {
            throw UserException.cannotWrite(file, e);
        }
    }

    /** {@code value} as one line of JSON. */
    public static String toJson(Object value) {
        try {
            return JSON.writeValueAsString(value);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static String json(Object value) {
        try {
            return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(value);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
