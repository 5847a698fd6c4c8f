package io.roundhouse.worker;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.roundhouse.worker.data.DataException;
import io.roundhouse.worker.data.DataSplits;
import io.roundhouse.worker.data.FashionMnist;
import io.roundhouse.worker.data.IdxReader;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class IdxReaderTest {
    @TempDir
    Path dir;

    @Test
    void readsPlainAndGzip() throws IOException {
        byte[] data = {1, 2, 3, 4, 5, 6};
        IdxFixtures.writeIdx(dir.resolve("a"), data, 3, 1, 2);
        IdxFixtures.writeIdx(dir.resolve("a.gz"), data, 3, 1, 2);
        for (String name : new String[] {"a", "a.gz"}) {
            IdxReader.IdxArray arr = IdxReader.read(dir.resolve(name), 3);
            assertArrayEquals(new int[] {3, 1, 2}, arr.dims());
            assertArrayEquals(data, arr.data());
        }
    }

    @Test
    void rejectsABadMagicNumber() throws IOException {
        Path f = dir.resolve("bad");
        Files.write(f, new byte[] {0x12, 0x34, 0x08, 0x01, 0, 0, 0, 1, 7});
        DataException e = assertThrows(DataException.class, () -> IdxReader.read(f, 1));
        assertTrue(e.getMessage().startsWith(f + ": bad IDX magic number 0x12340801"), e.getMessage());
    }

    @Test
    void rejectsTheWrongRank() throws IOException {
        IdxFixtures.writeIdx(dir.resolve("labels"), new byte[] {1, 2}, 2);
        DataException e = assertThrows(DataException.class, () -> IdxReader.read(dir.resolve("labels"), 3));
        assertEquals(dir.resolve("labels") + ": has 1 dimensions, expected 3 (an images file)", e.getMessage());
    }

    @Test
    void rejectsATruncatedFile() throws IOException {
        Path f = dir.resolve("short.gz");
        IdxFixtures.writeIdx(f, new byte[] {1, 2, 3}, 4);
        DataException e = assertThrows(DataException.class, () -> IdxReader.read(f, 1));
        assertTrue(e.getMessage().contains("length 11 bytes does not match its header [4], which needs 12 bytes"), e.getMessage());
    }

    @Test
    void rejectsImagesAndLabelsThatDisagree() throws IOException {
        IdxFixtures.write(dir, 20, 10, 1);
        IdxFixtures.writeIdx(dir.resolve("t10k-labels-idx1-ubyte.gz"), new byte[9], 9);
        DataException e = assertThrows(DataException.class, () -> FashionMnist.load(dir));
        assertTrue(e.getMessage().contains("has 10 images but"), e.getMessage());
        assertTrue(e.getMessage().contains("has 9 labels"), e.getMessage());
    }

    @Test
    void rejectsALabelOutOfRange() throws IOException {
        IdxFixtures.write(dir, 20, 10, 1);
        byte[] labels = new byte[10];
        labels[4] = 12;
        IdxFixtures.writeIdx(dir.resolve("t10k-labels-idx1-ubyte.gz"), labels, 10);
        DataException e = assertThrows(DataException.class, () -> FashionMnist.load(dir));
        assertTrue(e.getMessage().endsWith("label 12 at index 4 is outside [0, 10)"), e.getMessage());
    }

    @Test
    void namesAMissingFileAndTheFix() throws IOException {
        IdxFixtures.write(dir, 20, 10, 1);
        Files.delete(dir.resolve("train-labels-idx1-ubyte.gz"));
        DataException e = assertThrows(DataException.class, () -> FashionMnist.load(dir));
        assertTrue(e.getMessage().startsWith("missing data file " + dir.resolve("train-labels-idx1-ubyte.gz")), e.getMessage());
        assertTrue(e.getMessage().contains("apt-get install dataset-fashion-mnist"), e.getMessage());
        DataException notDir = assertThrows(DataException.class, () -> FashionMnist.load(dir.resolve("nope")));
        assertTrue(notDir.getMessage().contains("is not a folder"), notDir.getMessage());
    }

    @Test
    void loadsAFixture() throws IOException {
        IdxFixtures.write(dir, 30, 12, 2);
        DataSplits s = FashionMnist.load(dir);
        assertEquals(30, s.train().size());
        assertEquals(12, s.test().size());
        assertEquals(784, ((io.roundhouse.worker.data.LabeledData) s.train()).features());
    }
}
