package io.roundhouse.comms;

/**
 * One message of a {@link Member} round, being sent or received: where its bytes live (an array
 * and an Unsafe offset into it, or null and an address) and how far it got.
 */
final class Message {
    boolean active;
    Object base;
    long address;
    int bytes;       // -1: learn from the first frame (capacity bounds it)
    int capacity;
    int done;
    int frames;
    int limit;       // outgoing: the bytes that may leave so far (held messages grow it; else bytes)

    boolean complete() {
        return !active || (frames > 0 && done == bytes);
    }
}
