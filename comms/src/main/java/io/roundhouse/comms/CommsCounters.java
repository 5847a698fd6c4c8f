package io.roundhouse.comms;

/**
 * What a member's transport did, counted as it happened (plain fields, written by the member's own
 * thread; read them from that thread or after it stops).
 */
public final class CommsCounters {
    public long bytesSent;
    public long bytesReceived;
    public long framesSent;
    public long framesReceived;
    /** Claims refused because the peer's window was full (or the log was rotating). */
    public long backPressureEvents;
    /** Claims refused because the peer was not (yet, or no longer) connected. */
    public long notConnectedEvents;
    /** Frames for a later operation left in their image to be read when that operation starts. */
    public long deferredFrames;
    /** Frames dropped because they did not carry this job's session token. */
    public long droppedFrames;

    @Override
    public String toString() {
        return "sent " + bytesSent + " B in " + framesSent + " frames, received " + bytesReceived + " B in "
                + framesReceived + " frames, back-pressure " + backPressureEvents + ", not-connected "
                + notConnectedEvents + ", deferred " + deferredFrames + ", dropped " + droppedFrames;
    }
}
