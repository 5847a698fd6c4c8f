package io.roundhouse.driver;

import java.io.OutputStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;

/**
 * Lets code that prints to a PrintStream write into picocli's PrintWriter (UTF-8, line-buffered).
 * Bytes are taken in bulk and passed on at each line's end or flush, and a flush with nothing
 * pending passes nothing (a PrintStream flushes after every print).
 */
final class WriterOutputStream extends OutputStream {
    private final PrintWriter out;
    private final java.io.ByteArrayOutputStream line = new java.io.ByteArrayOutputStream();

    WriterOutputStream(PrintWriter out) {
        this.out = out;
    }

    @Override
    public void write(int b) {
        line.write(b);
        if (b == '\n') {
            flush();
        }
    }

    @Override
    public void write(byte[] b, int off, int len) {
        int from = off;
        for (int i = off; i < off + len; i++) {
            if (b[i] == '\n') {
                line.write(b, from, i + 1 - from);
                flush();
                from = i + 1;
            }
        }
        line.write(b, from, off + len - from);
    }

    @Override
    public void flush() {
        if (line.size() == 0) {
            return;
        }
        out.print(line.toString(StandardCharsets.UTF_8));
        out.flush();
        line.reset();
    }
}
