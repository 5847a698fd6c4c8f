package io.roundhouse.worker.export;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.roundhouse.worker.train.RunFiles;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Writes float32 tensors as one safetensors file: an 8-byte little-endian header length N, N bytes
 * of JSON ({@code {"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...,
 * "__metadata__": {...}}}, padded with spaces so the data starts 8-byte aligned), then the tensors'
 * little-endian bytes back to back in the order they were added; offsets count from the data start.
 * The file appears whole or not at all (written beside itself, then renamed).
 */
public final class SafetensorsWriter {
    private static final ObjectMapper JSON = new ObjectMapper();

    private record Entry(String name, int[] shape, float[] data) {
    }

    private final List<Entry> entries = new ArrayList<>();
    private final ObjectNode metadata = JSON.createObjectNode();

    /** A string in the header's {@code __metadata__} (safetensors allows strings only). */
    public SafetensorsWriter meta(String key, String value) {
        metadata.put(key, value);
        return this;
    }

    /** Adds {@code data}, row-major of {@code shape}; the array is kept, not copied. */
    public SafetensorsWriter add(String name, float[] data, int... shape) {
        long size = 1;
        for (int s : shape) {
            size *= s;
        }
        if (size != data.length) {
            throw new IllegalArgumentException("tensor " + name + ": shape " + Arrays.toString(shape) + " holds " + size
                    + " values, the data " + data.length);
        }
        if (name.equals("__metadata__") || entries.stream().anyMatch(e -> e.name.equals(name))) {
            throw new IllegalArgumentException("tensor name " + name + " is taken");
        }
        entries.add(new Entry(name, shape.clone(), data));
        return this;
    }

    /** The header's bytes, padded with spaces to a multiple of 8. */
    byte[] header() {
        ObjectNode h = JSON.createObjectNode();
        long at = 0;
        for (Entry e : entries) {
            ObjectNode t = h.putObject(e.name);
            t.put("dtype", "F32");
            ArrayNode shape = t.putArray("shape");
            for (int s : e.shape) {
                shape.add(s);
            }
            long end = at + 4L * e.data.length;
            t.putArray("data_offsets").add(at).add(end);
            at = end;
        }
        h.set("__metadata__", metadata);
        byte[] json = h.toString().getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) / 8 * 8;
        byte[] out = Arrays.copyOf(json, padded);
        Arrays.fill(out, json.length, padded, (byte) ' ');
        return out;
    }

    /** Writes the file at {@code target}, replacing it (through a temporary file and a rename). */
    public void write(Path target) {
        RunFiles.writeAtomically(target, this::writeTo);
    }

    private void writeTo(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                StandardOpenOption.WRITE)) {
            byte[] header = header();
            ByteBuffer buf = ByteBuffer.allocate(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
            buf.putLong(header.length);
            buf.flip();
            writeFully(ch, buf);
            writeFully(ch, ByteBuffer.wrap(header));
            for (Entry e : entries) {
                for (int i = 0; i < e.data.length; ) {
                    buf.clear();
                    while (i < e.data.length && buf.remaining() >= 4) {
                        buf.putFloat(e.data[i++]);
                    }
                    buf.flip();
                    writeFully(ch, buf);
                }
            }
            ch.force(true);
        }
    }

    private static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }
}
