package io.roundhouse.worker.data;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.GZIPInputStream;

/**
 * Reads IDX files (the MNIST format): a big-endian header {@code 0x00 0x00 type ndim} then ndim
 * int32 dimensions, then unsigned bytes. Plain or gzip (detected from the content, not the name).
 * Only unsigned-byte data (type 0x08) is accepted. Every check failure names the file.
 */
public final class IdxReader {
    private static final int UBYTE = 0x08;

    private IdxReader() {
    }

    /** An IDX array: its dimensions and its bytes (row-major). */
    public record IdxArray(int[] dims, byte[] data) {
    }

    /**
     * @param expectedRank 1 for labels, 3 for images
     */
    public static IdxArray read(Path file, int expectedRank) {
        if (!Files.isRegularFile(file)) {
            throw new DataException("missing data file " + file);
        }
        byte[] bytes = readAll(file);
        ByteBuffer buf = ByteBuffer.wrap(bytes); // big-endian by default, as IDX is
        if (bytes.length < 4) {
            throw new DataException(file + ": too short for an IDX header (" + bytes.length + " bytes)");
        }
        int zero = buf.getShort() & 0xFFFF;
        int type = buf.get() & 0xFF;
        int rank = buf.get() & 0xFF;
        if (zero != 0 || type != UBYTE) {
            throw new DataException(String.format("%s: bad IDX magic number 0x%08x: expected 0x000008%02x "
                    + "(unsigned bytes, %d dimensions); is this an IDX file?", file, buf.getInt(0), expectedRank, expectedRank));
        }
        if (rank != expectedRank) {
            throw new DataException(file + ": has " + rank + " dimensions, expected " + expectedRank
                    + (expectedRank == 1 ? " (a labels file)" : " (an images file)"));
        }
        if (bytes.length < 4 + 4 * rank) {
            throw new DataException(file + ": header truncated: needs " + (4 + 4 * rank) + " bytes, file has " + bytes.length);
        }
        int[] dims = new int[rank];
        long count = 1;
        for (int i = 0; i < rank; i++) {
            dims[i] = buf.getInt();
            if (dims[i] <= 0) {
                throw new DataException(file + ": dimension " + i + " is " + dims[i] + ", must be positive");
            }
            count *= dims[i];
        }
        long expected = 4L + 4L * rank + count;
        if (bytes.length != expected) {
            throw new DataException(file + ": length " + bytes.length + " bytes does not match its header "
                    + java.util.Arrays.toString(dims) + ", which needs " + expected + " bytes (truncated or corrupt download?)");
        }
        byte[] data = new byte[(int) count];
        buf.get(data);
        return new IdxArray(dims, data);
    }

    private static byte[] readAll(Path file) {
        try (InputStream raw = new BufferedInputStream(Files.newInputStream(file))) {
            raw.mark(2);
            int b0 = raw.read();
            int b1 = raw.read();
            raw.reset();
            boolean gzip = b0 == 0x1f && b1 == 0x8b;
            try (InputStream in = gzip ? new GZIPInputStream(raw, 1 << 16) : raw) {
                ByteArrayOutputStream out = new ByteArrayOutputStream(1 << 20);
                in.transferTo(out);
                return out.toByteArray();
            }
        } catch (IOException e) {
            throw new DataException(file + ": cannot read it (" + io.roundhouse.worker.UserException.reason(e)
                    + "): the file is missing, unreadable, damaged or cut short; replace it (the Debian package "
                    + "dataset-fashion-mnist has the originals)", e);
        }
    }
}
