package io.roundhouse.comms;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import org.agrona.UnsafeApi;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Each verdict of {@link Intake} on a hand-made frame: rank 0 of 3, in round 1 of collective #5. */
class IntakeTest {
    private static final long TOKEN = 42L;
    private static final long BYTE_BASE = UnsafeApi.arrayBaseOffset(byte[].class);

    private final Message[] incoming = {new Message(), new Message(), new Message()};
    private final boolean[] hello = new boolean[3];
    private final CommsCounters counters = new CommsCounters();
    private final byte[] room = new byte[8];
    private Intake intake;

    @BeforeEach
    void expectUpToEightBytesFromRank1() {
        Message m = incoming[1];
        m.active = true;
        m.base = room;
        m.address = BYTE_BASE;
        m.bytes = -1;
        m.capacity = room.length;
        intake = new Intake(TOKEN, 0, 3, hello, incoming, counters, r -> "rank " + r);
    }

    private int accept(long token, byte type, int src, int op, int step, int offset, int total, int session,
                       byte... payload) {
        byte[] frame = new byte[FrameHeader.LENGTH + payload.length];
        FrameHeader.write(new UnsafeBuffer(frame), 0, token, type, src, op, step, offset, total);
        System.arraycopy(payload, 0, frame, FrameHeader.LENGTH, payload.length);
        return intake.accept(new UnsafeBuffer(frame), 0, frame.length, 1, session, 5, 1, "allToAll");
    }

    private int data(int src, int op, int step, int offset, int total, byte... payload) {
        return accept(TOKEN, FrameHeader.DATA, src, op, step, offset, total, 10 + src, payload);
    }

    private void assertMalformed(int verdict, String... words) {
        assertEquals(Intake.MALFORMED, verdict);
        for (String w : words) {
            assertTrue(intake.failedWhat().contains(w), intake.failedWhat());
        }
        assertEquals(0, incoming[1].done, "nothing copied");
    }

    @Test
    void aMessageArrivesInTwoFramesInOrder() {
        assertEquals(Intake.TAKEN, data(1, 5, 1, 0, 5, (byte) 1, (byte) 2, (byte) 3));
        assertEquals(Intake.TAKEN, data(1, 5, 1, 3, 5, (byte) 4, (byte) 5));
        assertEquals(5, incoming[1].bytes);
        assertTrue(incoming[1].complete());
        assertArrayEquals(new byte[] {1, 2, 3, 4, 5, 0, 0, 0}, room);
        assertEquals(2, counters.framesReceived);
        assertEquals(5, counters.bytesReceived);
    }

    @Test
    void anotherJobsFrameIsDroppedAndCounted() {
        assertEquals(Intake.TAKEN, accept(TOKEN + 1, FrameHeader.DATA, 1, 5, 1, 0, 1, 7, (byte) 9));
        assertEquals(1, counters.droppedFrames);
        assertEquals(0, incoming[1].done);
        assertEquals(0, room[0]);
    }

    @Test
    void aHelloIsNoted() {
        assertEquals(Intake.TAKEN, accept(TOKEN, FrameHeader.HELLO, 2, 0, 0, 0, 0, 8));
        assertTrue(hello[2]);
    }

    @Test
    void aLaterCollectivesFrameWaits() {
        assertEquals(Intake.LATER, data(1, 5, 2, 0, 1, (byte) 1));
        assertEquals(Intake.LATER, data(1, 6, 0, 0, 1, (byte) 1));
        assertEquals(2, counters.deferredFrames);
        assertEquals(0, incoming[1].done);
    }

    @Test
    void malformedFramesAreNamedAndNeverCopied() {
        byte[] shortFrame = new byte[8];
        assertMalformed(intake.accept(new UnsafeBuffer(shortFrame), 0, 8, 1, 7, 5, 1, "allToAll"),
                "a frame of 8 bytes");
        assertMalformed(data(0, 5, 1, 0, 1, (byte) 1), "claiming to come from rank 0");
        assertMalformed(data(3, 5, 1, 0, 1, (byte) 1), "claiming to come from rank 3");
        assertMalformed(accept(TOKEN, (byte) 9, 1, 5, 1, 0, 1, 7), "unknown type 9");
        assertMalformed(data(1, 5, 0, 0, 1, (byte) 1), "unexpected frame", "#5 round 0");
        assertMalformed(data(1, 5, -1, 0, 1, (byte) 1), "round -1");
        assertMalformed(data(2, 5, 1, 0, 1, (byte) 1), "unexpected frame from rank 2");
        assertMalformed(data(1, 5, 1, 0, 9, (byte) 1), "a 9-byte message where at most 8 fit");
        assertMalformed(data(1, 5, 1, 2, 4, (byte) 1), "sent bytes [2, 3) of a 4-byte message");
        assertMalformed(data(1, 5, 1, 0, 2, (byte) 1, (byte) 2, (byte) 3), "sent bytes [0, 3) of a 2-byte");
        assertEquals(-1, incoming[1].bytes, "a malformed frame does not fix the message's length");
        assertTrue(Arrays.equals(new byte[8], room));
    }

    @Test
    void collectiveNumbersWrapAround() {
        byte[] frame = new byte[FrameHeader.LENGTH + 1];
        // At collective 2^31 − 1 the next one is −2^31: later, not earlier.
        FrameHeader.write(new UnsafeBuffer(frame), 0, TOKEN, FrameHeader.DATA, 1, Integer.MIN_VALUE, 0, 0, 1);
        assertEquals(Intake.LATER, intake.accept(new UnsafeBuffer(frame), 0, frame.length, 1, 11, Integer.MAX_VALUE,
                1, "allToAll"));
        // And the one before −2^31 is 2^31 − 1: earlier.
        FrameHeader.write(new UnsafeBuffer(frame), 0, TOKEN, FrameHeader.DATA, 1, Integer.MAX_VALUE, 1, 0, 1);
        assertMalformed(intake.accept(new UnsafeBuffer(frame), 0, frame.length, 1, 11, Integer.MIN_VALUE, 1,
                "allToAll"), "unexpected frame");
        FrameHeader.write(new UnsafeBuffer(frame), 0, TOKEN, FrameHeader.DATA, 1, Integer.MIN_VALUE, 1, 0, 1);
        assertEquals(Intake.TAKEN, intake.accept(new UnsafeBuffer(frame), 0, frame.length, 1, 11, Integer.MIN_VALUE,
                1, "allToAll"), "the current one, past the wrap");
    }

    @Test
    void aSessionCannotSpeakForTwoRanks() {
        assertEquals(Intake.TAKEN, accept(TOKEN, FrameHeader.HELLO, 1, 0, 0, 0, 0, 7));
        assertMalformed(accept(TOKEN, FrameHeader.HELLO, 2, 0, 0, 0, 0, 7), "session 7 sent frames as rank 1 and as rank 2");
        assertEquals(1, intake.rankOfSession(1, 7));
        assertEquals(-1, intake.rankOfSession(0, 7), "sessions are per subscription");
    }
}
