package io.roundhouse.comms;

import java.nio.ByteOrder;
import org.agrona.MutableDirectBuffer;

/**
 * The header every Roundhouse frame starts with, little-endian, 32 bytes, followed by the payload:
 * <pre>
 *  0  long  sessionToken   the job's random token; frames without it are dropped
 *  8  byte  type           {@link #HELLO}, {@link #DATA}, {@link #CONTROL}
 *  9  3 bytes reserved (0)
 * 12  int   srcRank
 * 16  int   op             the collective's sequence number (every member runs them in one order)
 * 20  int   step           the round within the collective
 * 24  int   byteOffset     where this frame's payload goes in the message
 * 28  int   totalBytes     the whole message's length
 * </pre>
 */
final class FrameHeader {
    static final ByteOrder ORDER = ByteOrder.LITTLE_ENDIAN;
    static final int TOKEN = 0;
    static final int TYPE = 8;
    static final int SRC = 12;
    static final int OP = 16;
    static final int STEP = 20;
    static final int BYTE_OFFSET = 24;
    static final int TOTAL_BYTES = 28;
    static final int LENGTH = 32;

    /** Sent once per peer at connect, so each member learns which image is which rank. */
    static final byte HELLO = 1;
    /** A piece of a collective's message. */
    static final byte DATA = 2;
    /** A whole control message (Kryo-encoded payload; Aeron fragments and reassembles it). */
    static final byte CONTROL = 3;

    /** Writes a header at {@code at}. */
    static void write(MutableDirectBuffer b, int at, long token, byte type, int src, int op, int step, int byteOffset,
                      int total) {
        b.putLong(at + TOKEN, token, ORDER);
        b.putInt(at + TYPE, type, ORDER); // type in the low byte, 3 reserved zero bytes
        b.putInt(at + SRC, src, ORDER);
        b.putInt(at + OP, op, ORDER);
        b.putInt(at + STEP, step, ORDER);
        b.putInt(at + BYTE_OFFSET, byteOffset, ORDER);
        b.putInt(at + TOTAL_BYTES, total, ORDER);
    }

    private FrameHeader() {
    }
}
