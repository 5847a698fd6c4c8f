package io.roundhouse.comms;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import java.util.List;

/**
 * The control codec fuzzed with Jazzer's coverage guidance ({@code scripts/fuzz}): whatever bytes
 * arrive, decoding returns a registered message or fails with a {@link CommsException}, never
 * another exception, an unbounded allocation or a hang; and every message encodes and decodes to
 * itself. A plain test run replays the inputs kept under this class's {@code Inputs} folder.
 */
class ControlCodecFuzzTest {
    record Report(int rank, long step, float loss, float[] load, String note, int[] counts, byte[] blob,
                  double[] values, long[] times) {
    }

    record Command(String kind, long atStep) {
    }

    private static final int MAX_BYTES = 4096;
    private static final ControlCodec CODEC = new ControlCodec(MAX_BYTES, List.of(Report.class, Command.class));

    @FuzzTest(maxDuration = "25s")
    void anyBytesDecodeToAMessageOrANamedError(byte[] input) {
        Object decoded;
        try {
            decoded = CODEC.decode(input, 0, input.length);
        } catch (CommsException expected) {
            return;
        }
        assertTrue(decoded instanceof Report || decoded instanceof Command || decoded instanceof String
                || decoded.getClass().isArray(), () -> "decoded " + decoded.getClass());
    }

    @FuzzTest(maxDuration = "25s")
    void everyMessageRoundTrips(FuzzedDataProvider d) {
        Report r = new Report(d.consumeInt(), d.consumeLong(), d.consumeFloat(), floats(d), d.consumeString(64),
                d.consumeInts(d.consumeInt(0, 16)), d.consumeBytes(d.consumeInt(0, 64)), doubles(d),
                d.consumeLongs(d.consumeInt(0, 8)));
        int[] length = new int[1];
        byte[] bytes = CODEC.encode(r, length);
        Report back = (Report) CODEC.decode(bytes, 0, length[0]);
        assertEquals(r.rank(), back.rank());
        assertEquals(r.step(), back.step());
        assertEquals(Float.floatToRawIntBits(r.loss()), Float.floatToRawIntBits(back.loss()));
        assertArrayEquals(r.load(), back.load());
        assertEquals(r.note(), back.note());
        assertArrayEquals(r.counts(), back.counts());
        assertArrayEquals(r.blob(), back.blob());
        assertArrayEquals(r.values(), back.values());
        assertArrayEquals(r.times(), back.times());
    }

    private static float[] floats(FuzzedDataProvider d) {
        float[] v = new float[d.consumeInt(0, 16)];
        for (int i = 0; i < v.length; i++) {
            v[i] = d.consumeFloat();
        }
        return v;
    }

    private static double[] doubles(FuzzedDataProvider d) {
        double[] v = new double[d.consumeInt(0, 8)];
        for (int i = 0; i < v.length; i++) {
            v[i] = d.consumeDouble();
        }
        return v;
    }
}
