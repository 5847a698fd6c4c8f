package io.roundhouse.comms;

import static io.roundhouse.comms.FrameHeader.CONTROL;
import static io.roundhouse.comms.FrameHeader.LENGTH;
import static io.roundhouse.comms.FrameHeader.ORDER;
import static io.roundhouse.comms.FrameHeader.SRC;
import static io.roundhouse.comms.FrameHeader.TOKEN;
import static io.roundhouse.comms.FrameHeader.TOTAL_BYTES;
import static io.roundhouse.comms.FrameHeader.TYPE;

import io.aeron.ExclusivePublication;
import io.aeron.FragmentAssembler;
import io.aeron.Publication;
import io.aeron.Subscription;
import java.util.ArrayList;
import java.util.List;
import org.agrona.DirectBuffer;
import org.agrona.concurrent.BackoffIdleStrategy;
import org.agrona.concurrent.IdleStrategy;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * Typed, asynchronous messages between a coordinator (the future Spark driver) and the members of
 * a group: a star, where the coordinator reaches every member and every member reaches the
 * coordinator. Party 0 is the coordinator, party {@code r + 1} is rank r; party p listens on
 * stream {@code streamIdBase + 500 + p} at its endpoint. Messages are encoded by a
 * {@link ControlCodec}, carry the session token, and are at most the codec's size.
 * Not thread-safe: one thread drives a channel.
 */
public final class ControlChannel implements AutoCloseable {
    /** What a poll delivers. */
    public interface Handler {
        void onMessage(int fromParty, Object message);
    }

    private final CommsConfig cfg;
    private final EmbeddedMediaDriver driver;
    private final int party;
    private final List<String> endpoints;  // one per party; a listening coordinator learns members' later
    private final ControlCodec codec;
    private final Subscription sub;
    private final ExclusivePublication[] pubs;
    private final UnsafeBuffer sendBuffer;
    private final byte[] receiveBytes;
    private final int[] length = new int[1];
    private final IdleStrategy idle = new BackoffIdleStrategy(10, 20, 1_000, 1_000_000);
    private final FragmentAssembler assembler;
    private Handler current;
    private long dropped;

    /**
     * @param party     0 for the coordinator, rank + 1 for a member
     * @param endpoints one per party: {@code "ipc"} or {@code host:port}
     */
    public ControlChannel(CommsConfig cfg, EmbeddedMediaDriver driver, int party, List<String> endpoints, ControlCodec codec,
                          int maxMessageBytes) {
        this.cfg = cfg;
        this.driver = driver;
        this.party = party;
        this.endpoints = List.copyOf(endpoints);
        this.codec = codec;
        this.sendBuffer = new UnsafeBuffer(new byte[LENGTH + maxMessageBytes]);
        this.receiveBytes = new byte[maxMessageBytes];
        this.assembler = new FragmentAssembler(this::onMessage);
        this.sub = driver.aeron().addSubscription(channel(party, false), stream(party));
        this.pubs = new ExclusivePublication[endpoints.size()];
        for (int p = 0; p < endpoints.size(); p++) {
            if (p != party && (party == 0 || p == 0)) {
                pubs[p] = driver.aeron().addExclusivePublication(channel(p, true), stream(p));
            }
        }
    }

    /**
     * A coordinator that listens at {@code endpoint} for {@code members} members whose endpoints it
     * does not know (a Spark driver learns them only once its tasks run): members reach it, it
     * reaches none of them.
     */
    public static ControlChannel listeningCoordinator(CommsConfig cfg, EmbeddedMediaDriver driver, String endpoint,
                                                      int members, ControlCodec codec, int maxMessageBytes) {
        return new ControlChannel(cfg, driver, endpoint, members, codec, maxMessageBytes);
    }

    private ControlChannel(CommsConfig cfg, EmbeddedMediaDriver driver, String endpoint, int members, ControlCodec codec,
                           int maxMessageBytes) {
        List<String> eps = new ArrayList<>();
        eps.add(endpoint);
        for (int r = 0; r < members; r++) {
            eps.add(null);
        }
        this.cfg = cfg;
        this.driver = driver;
        this.party = 0;
        this.endpoints = eps;
        this.codec = codec;
        this.sendBuffer = new UnsafeBuffer(new byte[LENGTH + maxMessageBytes]);
        this.receiveBytes = new byte[maxMessageBytes];
        this.assembler = new FragmentAssembler(this::onMessage);
        this.sub = driver.aeron().addSubscription(channel(0, false), stream(0));
        this.pubs = new ExclusivePublication[eps.size()];
    }

    /**
     * A listening coordinator's route to {@code party}, once that member has said where it listens
     * (see {@link #resolvedEndpoint}). UDP only.
     */
    public void attach(int party, String endpoint) {
        if (this.party != 0 || party < 1 || party >= endpoints.size()) {
            throw new IllegalArgumentException(describe(this.party) + " cannot attach party " + party);
        }
        if (pubs[party] != null) {
            pubs[party].close();
        }
        endpoints.set(party, endpoint);
        pubs[party] = driver.aeron().addExclusivePublication(channel(party, true), stream(party));
    }

    /** Where this party actually listens ({@code host:port}, the port resolved when it was 0), or null until known. */
    public String resolvedEndpoint() {
        return sub.resolvedEndpoint();
    }

    private int stream(int p) {
        return cfg.streamIdBase() + 500 + p;
    }

    private String channel(int p, boolean publication) {
        String ep = endpoints.get(p);
        if (cfg.transport() == Transport.IPC) {
            return "aeron:ipc";
        }
        return "aeron:udp?endpoint=" + ep + (publication ? "|mtu=" + cfg.mtuBytes() : "");
    }

    public String describe(int p) {
        return (p == 0 ? "coordinator" : "rank " + (p - 1)) + " (" + (cfg.transport() == Transport.IPC
                ? "ipc stream " + stream(p) : "udp " + (endpoints.get(p) == null ? "endpoint unknown" : endpoints.get(p)))
                + ")";
    }

    /** Waits until this party's publications are connected; names the parties still missing. */
    public void connect() {
        long deadline = System.nanoTime() + cfg.connectTimeoutMs() * 1_000_000L;
        while (true) {
            List<Integer> missing = new ArrayList<>();
            for (int p = 0; p < pubs.length; p++) {
                if (pubs[p] != null && !pubs[p].isConnected()) {
                    missing.add(p);
                }
            }
            if (missing.isEmpty()) {
                return;
            }
            if (System.nanoTime() > deadline) {
                StringBuilder sb = new StringBuilder();
                for (int p : missing) {
                    sb.append(sb.length() == 0 ? "" : ", ").append(describe(p));
                }
                throw new PeerException(missing.stream().map(p -> p - 1).toList(), "control channel: " + describe(party)
                        + " could not reach " + sb + " within " + cfg.connectTimeoutMs() + " ms");
            }
            idle.idle(0);
        }
    }

    /** Sends {@code message} to {@code toParty}, waiting out back-pressure up to the op timeout. */
    public void send(int toParty, Object message) {
        ExclusivePublication pub = toParty >= 0 && toParty < pubs.length ? pubs[toParty] : null;
        if (pub == null) {
            throw new IllegalArgumentException(describe(party) + " has no control route to party " + toParty
                    + " (the channel is a star: members talk to the coordinator only)");
        }
        byte[] encoded = codec.encode(message, length);
        if (length[0] > receiveBytes.length) {
            throw new CommsException("control message " + message.getClass().getSimpleName() + " is " + length[0]
                    + " bytes; the limit is " + receiveBytes.length);
        }
        sendBuffer.putLong(TOKEN, cfg.sessionToken(), ORDER);
        sendBuffer.putInt(TYPE, CONTROL, ORDER);
        sendBuffer.putInt(SRC, party, ORDER);
        sendBuffer.putLong(16, 0L, ORDER);
        sendBuffer.putInt(24, 0, ORDER);
        sendBuffer.putInt(TOTAL_BYTES, length[0], ORDER);
        sendBuffer.putBytes(LENGTH, encoded, 0, length[0]);
        long deadline = System.nanoTime() + cfg.opTimeoutMs() * 1_000_000L;
        while (true) {
            long r = pub.offer(sendBuffer, 0, LENGTH + length[0]);
            if (r > 0) {
                return;
            }
            if (r == Publication.CLOSED || r == Publication.MAX_POSITION_EXCEEDED) {
                throw new PeerException(List.of(toParty - 1), "control channel: the publication to " + describe(toParty)
                        + " is closed");
            }
            if (System.nanoTime() > deadline) {
                throw new PeerException(List.of(toParty - 1), "control channel: " + describe(toParty) + " did not take a "
                        + message.getClass().getSimpleName() + " within " + cfg.opTimeoutMs() + " ms ("
                        + (r == Publication.NOT_CONNECTED ? "not connected" : "back-pressured") + ")");
            }
            idle.idle(0);
        }
    }

    /** Delivers up to {@code limit} waiting messages; returns how many fragments it read. */
    public int poll(Handler handler, int limit) {
        current = handler;
        return sub.poll(assembler, limit);
    }

    private void onMessage(DirectBuffer buffer, int offset, int len, io.aeron.logbuffer.Header header) {
        if (len < LENGTH || buffer.getLong(offset + TOKEN, ORDER) != cfg.sessionToken()) {
            dropped++;
            return;
        }
        int type = buffer.getByte(offset + TYPE);
        int from = buffer.getInt(offset + SRC, ORDER);
        int total = buffer.getInt(offset + TOTAL_BYTES, ORDER);
        if (type != CONTROL || from < 0 || from >= endpoints.size() || total != len - LENGTH || total > receiveBytes.length) {
            throw new CommsException("control channel on " + describe(party) + ": malformed frame (type " + type
                    + ", from party " + from + ", " + total + " of " + (len - LENGTH) + " bytes)");
        }
        buffer.getBytes(offset + LENGTH, receiveBytes, 0, total);
        current.onMessage(from, codec.decode(receiveBytes, 0, total));
    }

    /** Frames dropped for a wrong session token or length. */
    public long dropped() {
        return dropped;
    }

    @Override
    public void close() {
        sub.close();
        for (ExclusivePublication p : pubs) {
            if (p != null) {
                p.close();
            }
        }
    }
}
