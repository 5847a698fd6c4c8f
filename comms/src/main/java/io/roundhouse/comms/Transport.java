package io.roundhouse.comms;

/** How the members of a group reach each other. */
public enum Transport {
    /** Shared memory between members on one host (Aeron IPC). */
    IPC,
    /** UDP unicast, one endpoint (host:port) per member: across hosts, or loopback. */
    UDP
}
