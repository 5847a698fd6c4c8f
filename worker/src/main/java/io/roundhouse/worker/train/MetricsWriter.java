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
