package io.roundhouse.worker;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.cpu.CpuBackend;
import io.roundhouse.kernels.Philox;
import io.roundhouse.worker.data.FloatDataset;
import io.roundhouse.worker.data.ImageDataset;
import io.roundhouse.worker.model.Hyper;
import io.roundhouse.worker.data.Batcher;
import org.junit.jupiter.api.Test;

/** The image-shift augmentation: what moves where, the border, the keying, and non-images refused. */
class AugmentShiftTest {
    private static final int SIDE = 5;

    @Test
    void imagesMoveByTheirDrawnShiftWithTheBorderFilled() {
        Backend be = new CpuBackend();
        int n = 40;
        byte[] pixels = new byte[n * SIDE * SIDE];
        for (int j = 0; j < pixels.length; j++) {
            pixels[j] = (byte) (1 + j % 250);
        }
        ImageDataset data = new ImageDataset("t", pixels, new int[n], SIDE * SIDE, 2);
        assertEquals(SIDE, data.imageSide());
        Batcher b = new Batcher(be, data, n, 1);
        b.load(0, n);
        float[] before = new float[n * SIDE * SIDE];
        be.read(b.x().rows(n), before);
        int[] k = new int[n];
        for (int r = 0; r < n; r++) {
            k[r] = r % 3;  // 0, 1, 2
        }
        b.shift(n, k, 9, 4, 100);
        float[] after = new float[n * SIDE * SIDE];
        be.read(b.x().rows(n), after);
        int moved = 0;
        for (int r = 0; r < n; r++) {
            long g = (100L + r) * 2;
            int dx = (int) (Philox.uniform(9, 4, g) * (2 * k[r] + 1)) - k[r];
            int dy = (int) (Philox.uniform(9, 4, g + 1) * (2 * k[r] + 1)) - k[r];
            assertTrue(Math.abs(dx) <= k[r] && Math.abs(dy) <= k[r]);
            moved += dx != 0 || dy != 0 ? 1 : 0;
            for (int y = 0; y < SIDE; y++) {
                for (int x = 0; x < SIDE; x++) {
                    int sy = y - dy;
                    int sx = x - dx;
                    float want = sy >= 0 && sy < SIDE && sx >= 0 && sx < SIDE ? before[r * 25 + sy * SIDE + sx]
                            : data.background();
                    assertEquals(want, after[r * 25 + y * SIDE + x], 0f, "example " + r + " pixel " + x + "," + y);
                }
            }
            if (k[r] == 0) {
                assertArrayEquals(java.util.Arrays.copyOfRange(before, r * 25, r * 25 + 25),
                        java.util.Arrays.copyOfRange(after, r * 25, r * 25 + 25), "k = 0 leaves the image");
            }
        }
        assertTrue(moved > n / 3, "most images with k > 0 move: " + moved);
    }

    @Test
    void nonImagesAreRefusedAndTheIntegerTransformCoversItsRange() {
        Backend be = new CpuBackend();
        FloatDataset flat = new FloatDataset("p", new float[2 * 7], new int[2], 7, 2);
        Batcher b = new Batcher(be, flat, 2, 1);
        b.load(0, 2);
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> b.shift(2, new int[] {1, 1}, 1, 1, 0));
        assertTrue(e.getMessage().contains("augment.shift needs square images"), e.getMessage());
        for (int v = 0; v <= 8; v++) {
            assertEquals(v, Hyper.AUGMENT_SHIFT.value(Hyper.AUGMENT_SHIFT.unconstrained(v)), "round trip of " + v);
        }
        assertEquals(0, Hyper.AUGMENT_SHIFT.value(-50));
        assertEquals(8, Hyper.AUGMENT_SHIFT.value(50));
    }
}
