package io.roundhouse.comms;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import java.util.Arrays;
import org.agrona.UnsafeApi;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * Frame headers fuzzed with Jazzer's coverage guidance ({@code scripts/fuzz}): a member in a
 * chosen collective and round, expecting chosen messages, is fed a run of frames whose header
 * fields and payloads the fuzzer picks. Whatever arrives, {@link Intake} returns a verdict (never
 * throws); nothing is written outside a message's room; a message's bytes are exactly the payloads
 * it took, in order; a frame left for later changes nothing; another job's frame is only counted;
 * a malformed frame is named. A plain test run replays the inputs kept under this class's
 * {@code Inputs} folder.
 */
class IntakeFuzzTest {
    private static final long TOKEN = 0x5EC2E7L;
    private static final int GUARD = 16;
    private static final byte SENTINEL = (byte) 0xA5;
    private static final long BYTE_BASE = UnsafeApi.arrayBaseOffset(byte[].class);

    @FuzzTest(maxDuration = "25s")
    void anyFramesAreTakenDeferredDroppedOrNamed(FuzzedDataProvider d) {
        int size = d.consumeInt(2, 4);
        int rank = d.consumeInt(0, size - 1);
        int op = d.consumeInt(1, 4);
        int step = d.consumeInt(0, 2);
        Message[] incoming = new Message[size];
        byte[][] rooms = new byte[size][];
        byte[][] expected = new byte[size][];
        for (int r = 0; r < size; r++) {
            Message m = new Message();
            incoming[r] = m;
            if (r == rank || !d.consumeBoolean()) {
                continue;
            }
            int capacity = d.consumeInt(0, 200);
            rooms[r] = new byte[GUARD + capacity + GUARD];
            Arrays.fill(rooms[r], SENTINEL);
            m.active = true;
            m.base = rooms[r];
            m.address = BYTE_BASE + GUARD;
            m.capacity = capacity;
            m.bytes = d.consumeBoolean() ? -1 : d.consumeInt(0, capacity);
            expected[r] = new byte[0];
        }
        CommsCounters counters = new CommsCounters();
        Intake intake = new Intake(TOKEN, rank, size, new boolean[size], incoming, counters, r -> "rank " + r);

        int frames = d.consumeInt(1, 24);
        for (int f = 0; f < frames && d.remainingBytes() > 0; f++) {
            byte[] frame = frame(d, size, op, step, incoming);
            int at = d.consumeInt(0, 3) * 32;
            byte[] log = new byte[at + frame.length + 8];
            System.arraycopy(frame, 0, log, at, frame.length);
            int sessionId = d.consumeInt(0, 3);
            int subscription = d.consumeInt(0, 1);

            Message[] before = snapshot(incoming);
            long dropped = counters.droppedFrames;
            long taken = counters.framesReceived;
            int verdict = intake.accept(new UnsafeBuffer(log), at, frame.length, subscription, sessionId, op, step,
                    "allToAll");

            boolean ours = frame.length >= FrameHeader.LENGTH
                    && new UnsafeBuffer(frame).getLong(FrameHeader.TOKEN, FrameHeader.ORDER) == TOKEN;
            assertEquals(frame.length >= FrameHeader.LENGTH && !ours, counters.droppedFrames == dropped + 1,
                    "only frames of a full header with another token are dropped and counted");
            if (verdict == Intake.MALFORMED) {
                assertFalse(intake.failedWhat().isBlank());
                assertTrue(intake.failedSrc() >= -1 && intake.failedSrc() < size && intake.failedSrc() != rank,
                        "the blamed rank is a peer: " + intake.failedSrc());
                assertUnchanged(before, incoming);
                break; // a member that saw a malformed frame fails its collective
            }
            if (verdict == Intake.LATER) {
                assertUnchanged(before, incoming);
                continue;
            }
            assertEquals(Intake.TAKEN, verdict);
            if (counters.framesReceived == taken + 1) {
                int src = new UnsafeBuffer(frame).getInt(FrameHeader.SRC, FrameHeader.ORDER);
                byte[] payload = Arrays.copyOfRange(frame, FrameHeader.LENGTH, frame.length);
                expected[src] = concat(expected[src], payload);
            } else {
                assertUnchanged(before, incoming);
            }
        }
        for (int r = 0; r < size; r++) {
            Message m = incoming[r];
            if (rooms[r] == null) {
                assertEquals(0, m.done, "nothing arrives for a message not expected");
                continue;
            }
            assertTrue(m.done >= 0 && m.done <= m.capacity && (m.bytes < 0 || m.done <= m.bytes)
                    && m.bytes <= m.capacity, "within its room: done " + m.done + " of " + m.bytes + ", room "
                    + m.capacity);
            byte[] room = rooms[r];
            for (int i = 0; i < GUARD; i++) {
                assertEquals(SENTINEL, room[i], "nothing written before the room");
                assertEquals(SENTINEL, room[room.length - 1 - i], "nothing written past the room");
            }
            assertArrayEquals(expected[r], Arrays.copyOfRange(room, GUARD, GUARD + m.done),
                    "the message holds the payloads it took, in order");
        }
    }

    /** A frame built from fuzzed header fields (mostly near plausible) or raw bytes. */
    private static byte[] frame(FuzzedDataProvider d, int size, int op, int step, Message[] incoming) {
        if (d.consumeInt(0, 15) == 0) {
            return d.consumeBytes(d.consumeInt(0, 48));
        }
        int src = d.consumeBoolean() ? d.consumeInt(0, size - 1) : d.consumeInt();
        byte type = d.consumeBoolean() ? FrameHeader.DATA : d.consumeByte();
        int frameOp = op + (d.consumeBoolean() ? 0 : d.consumeInt(-2, 2));
        int frameStep = step + (d.consumeBoolean() ? 0 : d.consumeInt(-2, 2));
        Message m = src >= 0 && src < size ? incoming[src] : null;
        int offset = m != null && d.consumeBoolean() ? m.done : d.consumeInt();
        int total = m != null && m.bytes >= 0 && d.consumeBoolean() ? m.bytes : d.consumeInt(-1, 256);
        byte[] payload = d.consumeBytes(d.consumeInt(0, 96));
        byte[] frame = new byte[FrameHeader.LENGTH + payload.length];
        UnsafeBuffer b = new UnsafeBuffer(frame);
        long token = d.consumeInt(0, 15) == 0 ? d.consumeLong() : TOKEN;
        FrameHeader.write(b, 0, token, type, src, frameOp, frameStep, offset, total);
        System.arraycopy(payload, 0, frame, FrameHeader.LENGTH, payload.length);
        return frame;
    }

    private static Message[] snapshot(Message[] ms) {
        Message[] copy = new Message[ms.length];
        for (int i = 0; i < ms.length; i++) {
            Message c = new Message();
            c.active = ms[i].active;
            c.bytes = ms[i].bytes;
            c.done = ms[i].done;
            c.frames = ms[i].frames;
            copy[i] = c;
        }
        return copy;
    }

    private static void assertUnchanged(Message[] before, Message[] after) {
        for (int i = 0; i < before.length; i++) {
            assertEquals(before[i].bytes, after[i].bytes, "message " + i + " length");
            assertEquals(before[i].done, after[i].done, "message " + i + " progress");
            assertEquals(before[i].frames, after[i].frames, "message " + i + " frames");
        }
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] c = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }
}
