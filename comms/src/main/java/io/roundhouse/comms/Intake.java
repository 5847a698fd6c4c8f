package io.roundhouse.comms;

import static io.roundhouse.comms.FrameHeader.BYTE_OFFSET;
import static io.roundhouse.comms.FrameHeader.DATA;
import static io.roundhouse.comms.FrameHeader.HELLO;
import static io.roundhouse.comms.FrameHeader.LENGTH;
import static io.roundhouse.comms.FrameHeader.OP;
import static io.roundhouse.comms.FrameHeader.ORDER;
import static io.roundhouse.comms.FrameHeader.SRC;
import static io.roundhouse.comms.FrameHeader.STEP;
import static io.roundhouse.comms.FrameHeader.TOKEN;
import static io.roundhouse.comms.FrameHeader.TOTAL_BYTES;
import static io.roundhouse.comms.FrameHeader.TYPE;

import java.util.function.IntFunction;
import org.agrona.DirectBuffer;
import org.agrona.UnsafeApi;
import org.agrona.collections.Int2IntHashMap;

/**
 * The receiving half of a {@link Member}: checks each arriving frame's {@link FrameHeader} against
 * where the member is (its collective, its round, the messages it expects from each peer) and
 * copies the payload into place. A frame is taken, left for a later collective, dropped (another
 * job's token) or malformed, and a malformed frame is named, never copied. Kept apart from Aeron so
 * that the checks can be fuzzed byte for byte ({@code IntakeFuzzTest}). Not thread-safe: the
 * member's thread drives it.
 */
final class Intake {
    /** The frame was used up: its payload copied, or a HELLO noted, or another job's frame dropped. */
    static final int TAKEN = 0;
    /** The frame belongs to a later collective: leave it in its image until the member gets there. */
    static final int LATER = 1;
    /** The frame cannot be right: {@link #failedSrc()} and {@link #failedWhat()} say why. */
    static final int MALFORMED = 2;

    private final long token;
    private final int rank;
    private final int size;
    private final boolean[] helloFrom;
    private final Message[] incoming;
    private final CommsCounters counters;
    private final IntFunction<String> describe;
    /** Per subscription (0 UDP, 1 IPC): the rank each session (a peer's publication) speaks for. */
    private final Int2IntHashMap[] sessionToRank = {new Int2IntHashMap(-1), new Int2IntHashMap(-1)};
    private int failedSrc = -1;
    private String failedWhat;

    /**
     * @param helloFrom set for each peer whose HELLO arrived
     * @param incoming  the message expected from each peer in the current round
     * @param describe  a rank in words, for the errors
     */
    Intake(long token, int rank, int size, boolean[] helloFrom, Message[] incoming, CommsCounters counters,
           IntFunction<String> describe) {
        this.token = token;
        this.rank = rank;
        this.size = size;
        this.helloFrom = helloFrom;
        this.incoming = incoming;
        this.counters = counters;
        this.describe = describe;
    }

    /**
     * Takes one frame of {@code length} bytes at {@code offset}, which arrived on {@code subscription}
     * from Aeron session {@code sessionId} while the member is in round {@code step} of collective
     * {@code op} (named {@code opName}).
     *
     * @return {@link #TAKEN}, {@link #LATER} or {@link #MALFORMED}
     */
    int accept(DirectBuffer buffer, int offset, int length, int subscription, int sessionId, int op, int step,
               String opName) {
        if (length < LENGTH) {
            return malformed(-1, "a frame of " + length + " bytes (shorter than the " + LENGTH
                    + "-byte header) on session " + sessionId);
        }
        if (buffer.getLong(offset + TOKEN, ORDER) != token) {
            counters.droppedFrames++;
            return TAKEN;
        }
        int type = buffer.getByte(offset + TYPE);
        int src = buffer.getInt(offset + SRC, ORDER);
        if (src < 0 || src >= size || src == rank) {
            return malformed(-1, "a frame claiming to come from rank " + src + " on session " + sessionId);
        }
        Int2IntHashMap sessions = sessionToRank[subscription];
        int known = sessions.get(sessionId);
        if (known == -1) {
            sessions.put(sessionId, src);
        } else if (known != src) {
            return malformed(src, "session " + sessionId + " sent frames as rank " + known + " and as rank " + src);
        }
        if (type == HELLO) {
            helloFrom[src] = true;
            return TAKEN;
        }
        if (type != DATA) {
            return malformed(src, "a frame of unknown type " + type + " from " + describe.apply(src));
        }
        int frameOp = buffer.getInt(offset + OP, ORDER);
        int frameStep = buffer.getInt(offset + STEP, ORDER);
        if (frameStep < 0) {
            return malformed(src, "a frame for collective #" + frameOp + " round " + frameStep + " from "
                    + describe.apply(src));
        }
        // Collectives are numbered in sequence-number arithmetic: the int wraps after 2^32 of them
        // (weeks of a long run), and the sign of the difference says which comes first.
        int ahead = frameOp - op;
        if (ahead > 0 || ahead == 0 && frameStep > step) {
            counters.deferredFrames++;
            return LATER;
        }
        Message m = incoming[src];
        if (ahead < 0 || frameStep < step || !m.active) {
            return malformed(src, "an unexpected frame from " + describe.apply(src) + " for collective #" + frameOp
                    + " round " + frameStep + " while in " + opName + " #" + op + " round " + step
                    + " (do all members run the same collectives in the same order?)");
        }
        int byteOffset = buffer.getInt(offset + BYTE_OFFSET, ORDER);
        int total = buffer.getInt(offset + TOTAL_BYTES, ORDER);
        int payload = length - LENGTH;
        int bytes = m.bytes;
        if (bytes < 0) { // learnt from the first frame, within the room
            if (total < 0 || total > m.capacity) {
                return malformed(src, describe.apply(src) + " sent a " + total + "-byte message where at most "
                        + m.capacity + " fit (" + opName + " #" + op + ")");
            }
            bytes = total;
        }
        if (total != bytes || byteOffset != m.done || payload > bytes - m.done) {
            return malformed(src, describe.apply(src) + " sent bytes [" + byteOffset + ", " + ((long) byteOffset + payload)
                    + ") of a " + total + "-byte message; expected bytes from " + m.done + " of " + bytes + " ("
                    + opName + " #" + op + ")");
        }
        m.bytes = bytes;
        if (payload > 0) {
            UnsafeApi.copyMemory(buffer.byteArray(), buffer.addressOffset() + offset + LENGTH, m.base,
                    m.address + m.done, payload);
        }
        m.done += payload;
        m.frames++;
        counters.framesReceived++;
        counters.bytesReceived += payload;
        return TAKEN;
    }

    /** The rank that session {@code sessionId} on {@code subscription} spoke for, or -1. */
    int rankOfSession(int subscription, int sessionId) {
        return sessionToRank[subscription].get(sessionId);
    }

    /** The peer a {@link #MALFORMED} frame came from, or -1 when it cannot be told. */
    int failedSrc() {
        return failedSrc;
    }

    /** What was wrong with the last {@link #MALFORMED} frame. */
    String failedWhat() {
        return failedWhat;
    }

    private int malformed(int src, String what) {
        failedSrc = src;
        failedWhat = what;
        return MALFORMED;
    }
}
