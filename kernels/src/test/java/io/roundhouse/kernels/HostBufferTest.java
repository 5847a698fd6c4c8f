package io.roundhouse.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.roundhouse.kernels.cpu.CpuBackend;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

/** Host buffers: tensors to and from them at offsets, and the copies they refuse. */
public class HostBufferTest {

    @Test
    void cpuRoundTrip() {
        try (CpuBackend be = new CpuBackend()) {
            HostBuffer h = roundTrip(be);
            assertFalse(h.pinned());
        }
    }

    /**
     * Rows of a tensor to a host buffer at an offset and back into another tensor's rows; what
     * lies outside the copied span is untouched. Also run on the GPU by {@link CudaOpsTest}.
     */
    public static HostBuffer roundTrip(Backend be) {
        HostBuffer h = be.allocateHost("staging", 40);
        assertEquals(40, h.capacity());
        assertTrue(h.bytes().isDirect());
        assertEquals(ByteOrder.nativeOrder(), h.bytes().order());
        float[] v = new float[30];
        for (int j = 0; j < v.length; j++) {
            v[j] = j * 0.25f - 3;
        }
        Tensor a = be.allocate("a", DType.FLOAT32, 10, 3);
        be.write(a, v);
        for (int j = 0; j < h.capacity(); j++) {
            h.put(j, -99f);
        }
        be.read(a.rows(2, 5), h, 7);  // 15 floats: a's elements 6..20 at h[7..22)
        for (int j = 0; j < h.capacity(); j++) {
            float want = j >= 7 && j < 22 ? v[j - 7 + 6] : -99f;
            assertEquals(want, h.get(j), 0f, "h[" + j + "]");
        }
        Tensor b = be.allocate("b", DType.FLOAT32, 10, 3);
        be.fill(b, 5f);
        be.write(b.rows(1, 5), h, 7);  // back into b's rows 1..5
        float[] got = new float[30];
        be.read(b, got);
        for (int j = 0; j < 30; j++) {
            float want = j >= 3 && j < 18 ? v[j - 3 + 6] : 5f;
            assertEquals(want, got[j], 0f, "b[" + j + "]");
        }

        Exception tooShort = assertThrows(IllegalArgumentException.class, () -> be.read(a, h, 11));
        assertTrue(tooShort.getMessage().contains("needs 30 floats"), tooShort.getMessage());
        assertThrows(IllegalArgumentException.class, () -> be.write(a, h, -1));
        Tensor ints = be.allocate("ints", DType.INT32, 4);
        Exception notFloat = assertThrows(IllegalArgumentException.class, () -> be.read(ints, h, 0));
        assertTrue(notFloat.getMessage().contains("not FLOAT32"), notFloat.getMessage());

        HostBuffer empty = be.allocateHost("empty", 0);
        assertEquals(0, empty.capacity());
        be.read(a.rows(0), empty, 0);
        return h;
    }
}
