package io.roundhouse.comms;

/** How the members of a group reach each other. */
public enum Transport {
    /** Shared memory between members on one host (Aeron IPC). */
    IPC,
    /** UDP unicast, one endpoint (host:port) per member: across hosts, or loopback. */
    UDP,
    /**
     * Per link: IPC between members whose endpoints ({@code host:port}, as for UDP) name the same
     * host, which must then share one media driver; UDP between hosts.
     */
    AUTO
}
