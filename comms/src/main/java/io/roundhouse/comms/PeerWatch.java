package io.roundhouse.comms;

import io.aeron.ExclusivePublication;
import io.aeron.Image;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.function.IntFunction;

/**
 * A member's watch over its peers during a round: which went away (Aeron marked their image
 * gone) and, when one did or the deadline passed, which of those the round still waits on, named
 * with what each owes. Checked without allocating until there is someone to blame.
 */
final class PeerWatch {
    private final int size;
    private final Intake intake;
    private final Message[] incoming;
    private final Message[] outgoing;
    private final ExclusivePublication[] pubs;
    private final IntFunction<String> describe;
    private final boolean[] gone;
    /**
     * Sessions whose image went away (subscription index << 32 | session id), posted by the Aeron
     * client's thread, drained by the member's.
     */
    private final ConcurrentLinkedQueue<Long> goneSessions = new ConcurrentLinkedQueue<>();

    /** {@code pubs} is filled by the member after this is made (images may go from the start). */
    PeerWatch(int size, Intake intake, Message[] incoming, Message[] outgoing, ExclusivePublication[] pubs,
              IntFunction<String> describe) {
        this.size = size;
        this.intake = intake;
        this.incoming = incoming;
        this.outgoing = outgoing;
        this.pubs = pubs;
        this.describe = describe;
        this.gone = new boolean[size];
    }

    /** Runs on the Aeron client's conductor thread: only posts the session id. */
    void onImageGone(int subscription, Image image) {
        goneSessions.add((long) subscription << 32 | (image.sessionId() & 0xFFFFFFFFL));
    }

    /**
     * The peers this round waits on that went away, or (when {@code late}) every peer it still
     * waits on, as an exception whose message starts with {@code where}; null when there is none.
     */
    PeerException blame(boolean late, String where) {
        List<Integer> blame = new ArrayList<>();
        StringBuilder sb = new StringBuilder();
        for (int r = 0; r < size; r++) {
            Message in = incoming[r];
            Message out = outgoing[r];
            boolean owed = !in.complete() || (out.active && !out.complete());
            if (owed && (gone[r] || late)) {
                blame.add(r);
                sb.append(sb.length() == 0 ? "" : "; ").append(describe.apply(r))
                        .append(gone[r] ? " went away" : " is late");
                if (!in.complete() && in.bytes == 0) {
                    sb.append(", its (empty) message has not arrived");
                } else if (!in.complete()) {
                    sb.append(", received ").append(in.done).append(" of ")
                            .append(in.bytes < 0 ? "an unknown number of" : Integer.toString(in.bytes)).append(" bytes");
                }
                if (out.active && !out.complete()) {
                    sb.append(", sent ").append(out.done).append(" of ").append(out.bytes).append(" bytes")
                            .append(pubs[r].isConnected() ? "" : " (not connected)");
                }
            }
        }
        return blame.isEmpty() ? null : new PeerException(blame, where + sb);
    }

    /** Whether a peer the round waits on went away (the sessions gone so far taken in first). */
    boolean anyOwingPeerGone() {
        if (!goneSessions.isEmpty()) {
            Long session;
            while ((session = goneSessions.poll()) != null) {
                int r = intake.rankOfSession((int) (session >>> 32), (int) (long) session);
                if (r >= 0) {
                    gone[r] = true;
                }
            }
        }
        for (int r = 0; r < size; r++) {
            if (gone[r] && (!incoming[r].complete() || (outgoing[r].active && !outgoing[r].complete()))) {
                return true;
            }
        }
        return false;
    }
}
