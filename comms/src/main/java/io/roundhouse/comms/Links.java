package io.roundhouse.comms;

import java.util.List;

/**
 * How one member reaches each peer, from the transport and the members' endpoints: the Aeron
 * channel of every link and of the member's own subscriptions. IPC groups have endpoints
 * {@code "ipc"}; UDP and {@link Transport#AUTO} groups {@code host:port}, and with AUTO a peer
 * whose endpoint names this member's host is reached over IPC (the members of a host share one
 * media driver). Every link uses the configured mtu, so frames are one size.
 */
final class Links {
    private final CommsConfig cfg;
    private final int rank;
    private final List<String> endpoints;
    private final boolean[] ipcTo;      // [W] whether this member reaches rank r over IPC
    private final boolean anyIpc;       // a peer over IPC
    private final boolean anyUdp;       // a peer over UDP

    Links(CommsConfig cfg, int rank, List<String> endpoints) {
        this.cfg = cfg;
        this.rank = rank;
        this.endpoints = endpoints;
        this.ipcTo = new boolean[endpoints.size()];
        boolean ipc = false;
        boolean udp = false;
        for (int r = 0; r < ipcTo.length; r++) {
            ipcTo[r] = cfg.transport() == Transport.IPC
                    || cfg.transport() == Transport.AUTO && host(endpoints.get(r)).equals(host(endpoints.get(rank)));
            if (r != rank) {
                ipc |= ipcTo[r];
                udp |= !ipcTo[r];
            }
        }
        this.anyIpc = ipc;
        this.anyUdp = udp;
    }

    /** Whether this member listens on its UDP endpoint (a UDP peer, or a UDP group of one). */
    boolean listensUdp() {
        return cfg.transport() != Transport.IPC && (anyUdp || !anyIpc);
    }

    /** Whether this member listens on IPC (an IPC group, or an AUTO peer on its host). */
    boolean listensIpc() {
        return cfg.transport() == Transport.IPC || anyIpc;
    }

    /** Whether every link is over IPC (the idle strategy of shared memory then suits). */
    boolean allIpc() {
        return cfg.transport() == Transport.IPC || cfg.transport() == Transport.AUTO && !anyUdp;
    }

    /** The channel this member listens on over UDP. */
    String udpSubscription() {
        return udp(rank, false);
    }

    /** The channel of the publication to rank {@code r}. */
    String publication(int r) {
        String ep = endpoints.get(r);
        if (cfg.transport() == Transport.IPC) {
            if (!ep.equals("ipc")) {
                throw new IllegalArgumentException("rank " + r + " endpoint '" + ep + "': an IPC group's endpoints are all 'ipc'");
            }
        } else if (!ep.matches("[^:]+:\\d{1,5}")) {
            throw new IllegalArgumentException("rank " + r + " endpoint '" + ep + "': a UDP endpoint is host:port");
        }
        if (ipcTo[r]) {
            // With AUTO the IPC links use the UDP mtu: one frame size on every link.
            return "aeron:ipc?term-length=" + cfg.termLengthBytes() + "|mtu=" + cfg.mtuBytes();
        }
        return udp(r, true);
    }

    private String udp(int r, boolean publication) {
        String ep = endpoints.get(r);
        int buffer = cfg.socketBufferBytes();
        String buffers = buffer > 0 ? "|so-sndbuf=" + buffer + "|so-rcvbuf=" + buffer : "";
        if (publication) {
            return "aeron:udp?endpoint=" + ep + "|term-length=" + cfg.termLengthBytes() + "|mtu=" + cfg.mtuBytes()
                    + buffers;
        }
        // Aeron's receiver window may not exceed the socket's receive buffer: a smaller buffer caps it.
        return "aeron:udp?endpoint=" + ep + buffers
                + (buffer > 0 ? "|rcv-wnd=" + Math.max(cfg.mtuBytes(), Math.min(buffer, cfg.termLengthBytes() / 2)) : "");
    }

    /** The host part of an endpoint ({@code host:port}). */
    static String host(String endpoint) {
        int colon = endpoint.lastIndexOf(':');
        return colon < 0 ? endpoint : endpoint.substring(0, colon);
    }

    /** "rank 2 (udp 127.0.0.1:40125)", "rank 1 (ipc stream 1001)", with AUTO "rank 3 (ipc 10.0.0.2:40125)". */
    String describe(int r) {
        if (cfg.transport() == Transport.IPC) {
            return "rank " + r + " (ipc stream " + (cfg.streamIdBase() + r) + ")";
        }
        return "rank " + r + " (" + (ipcTo[r] && r != rank ? "ipc " : "udp ") + endpoints.get(r) + ")";
    }
}
