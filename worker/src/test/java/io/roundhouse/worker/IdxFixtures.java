package io.roundhouse.worker;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.zip.GZIPOutputStream;

/**
 * Writes small Fashion-MNIST-shaped IDX fixtures: class c lights rows [2c+2, 2c+5) of a 28×28
 * image over low noise, so a model can learn it in a few steps.
 */
public final class IdxFixtures {
    private IdxFixtures() {
    }

    /** Writes the four files (gzip) into {@code dir}. */
    public static Path write(Path dir, int train, int test, long seed) throws IOException {
        Files.createDirectories(dir);
        Random r = new Random(seed);
        for (String prefix : new String[] {"train", "t10k"}) {
            int n = prefix.equals("train") ? train : test;
            byte[] labels = new byte[n];
            byte[] images = new byte[n * 784];
            for (int i = 0; i < n; i++) {
                int c = r.nextInt(10);
                labels[i] = (byte) c;
                for (int p = 0; p < 784; p++) {
                    int row = p / 28;
                    int v = r.nextInt(60);
                    if (row >= 2 * c + 2 && row < 2 * c + 5) {
                        v += 150;
                    }
                    images[i * 784 + p] = (byte) v;
                }
            }
            writeIdx(dir.resolve(prefix + "-images-idx3-ubyte.gz"), images, n, 28, 28);
            writeIdx(dir.resolve(prefix + "-labels-idx1-ubyte.gz"), labels, n);
        }
        return dir;
    }

    /** One IDX file of unsigned bytes, gzip-compressed when the name ends in .gz. */
    public static void writeIdx(Path file, byte[] data, int... dims) throws IOException {
        ByteBuffer header = ByteBuffer.allocate(4 + 4 * dims.length);
        header.put((byte) 0).put((byte) 0).put((byte) 0x08).put((byte) dims.length);
        for (int d : dims) {
            header.putInt(d);
        }
        try (OutputStream raw = Files.newOutputStream(file);
             OutputStream out = file.toString().endsWith(".gz") ? new GZIPOutputStream(raw) : raw) {
            out.write(header.array());
            out.write(data);
        }
    }
}
