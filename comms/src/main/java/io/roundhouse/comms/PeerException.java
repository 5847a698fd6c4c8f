package io.roundhouse.comms;

import java.util.List;

/**
 * One or more peers failed an operation: did not connect, stopped sending, went away, or sent
 * something malformed. {@link #ranks()} says which.
 */
public final class PeerException extends CommsException {
    private static final long serialVersionUID = 1L;
    private final List<Integer> ranks;

    public PeerException(List<Integer> ranks, String message) {
        super(message);
        this.ranks = List.copyOf(ranks);
    }

    public List<Integer> ranks() {
        return ranks;
    }
}
