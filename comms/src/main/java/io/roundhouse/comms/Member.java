package io.roundhouse.comms;

import static io.roundhouse.comms.FrameHeader.DATA;
import static io.roundhouse.comms.FrameHeader.HELLO;
import static io.roundhouse.comms.FrameHeader.LENGTH;

import io.aeron.ExclusivePublication;
import io.aeron.Image;
import io.aeron.Publication;
import io.aeron.Subscription;
import io.aeron.logbuffer.BufferClaim;
import io.aeron.logbuffer.ControlledFragmentHandler;
import io.aeron.logbuffer.ControlledFragmentHandler.Action;
import io.aeron.logbuffer.Header;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;
import org.agrona.UnsafeApi;
import org.agrona.concurrent.IdleStrategy;

/**
 * One member of a group of W: a subscription on its own endpoint and an exclusive publication to
 * every peer. It moves messages with {@link #transfer}: a set of outgoing and expected incoming
 * messages driven together until all are done, each frame claimed in the log and filled in place
 * (no copy but the one into the log and the one out of it), back-pressure answered by polling.
 * {@link Collectives} builds the collectives on it.
 *
 * <p>Every member runs the same collectives in the same order; each gets the next sequence number
 * and frames carry it, so a fast peer's frames for a later collective wait in their image
 * (controlled poll, ABORT) until this member gets there. Every wait has a deadline; a peer that
 * never connects, stops sending, goes away or sends garbage becomes a {@link PeerException} that
 * names it. Not thread-safe: one thread drives a member.
 */
public final class Member implements AutoCloseable {
    private static final long FLOAT_BASE = UnsafeApi.arrayBaseOffset(float[].class);
    private static final long BYTE_BASE = UnsafeApi.arrayBaseOffset(byte[].class);
    private static final long INT_BASE = UnsafeApi.arrayBaseOffset(int[].class);
    private static final int FRAGMENT_LIMIT = 64;
    private static final int FRAMES_PER_SEND_BURST = 16;

    private final CommsConfig cfg;
    private final int rank;
    private final int size;
    private final List<String> endpoints;
    private final EmbeddedMediaDriver driver;
    private final boolean ownsDriver;
    private final Subscription[] subs;  // [0] UDP, [1] IPC, each or null (see Links)
    private final Links links;
    private final ExclusivePublication[] pubs;
    private int polling;                // the subscription being polled
    private final boolean[] helloFrom;
    private final Intake intake;
    private final PeerWatch watch;
    private final IdleStrategy idle;
    private final String idleName;      // busy, yielding or backoff (auto resolved); background for a sibling
    private final BufferClaim claim = new BufferClaim();
    private final int framePayload;
    private final long token;
    private final CommsCounters counters = new CommsCounters();
    private final ControlledFragmentHandler handler = this::onFragment;

    // The transfer in progress: at most one outgoing and one incoming message per peer.
    private final Message[] outgoing;
    private final Message[] incoming;
    private int op;
    private int step;
    private String opName = "connect";
    private long roundTimeoutMs;
    private CommsException failure;
    private boolean started;            // a round was started ({@link #start}) and not yet finished

    /**
     * Joins a group: opens the subscription on this member's endpoint and a publication to every
     * peer. Call {@link #connect()} next.
     *
     * @param endpoints one per rank: {@code "ipc"} for IPC, {@code host:port} for UDP
     */
    public Member(CommsConfig cfg, EmbeddedMediaDriver driver, int rank, List<String> endpoints) {
        this(cfg, driver, false, rank, endpoints);
    }

    /**
     * Joins a group with this JVM's media driver for {@code jobKey} (started if needed, released on
     * {@link #close()}), and connects.
     *
     * @param localMembers how many members this JVM hosts (sizes the shared-memory check)
     */
    public static Member join(CommsConfig cfg, String jobKey, int rank, List<String> endpoints, int localMembers) {
        return join(cfg, EmbeddedMediaDriver.acquire(cfg, jobKey, localMembers, endpoints.size(), 0), rank, endpoints);
    }

    /**
     * Joins a group through {@code d} (this member's hold on it, released on {@link #close()} or
     * if joining fails), and connects.
     */
    public static Member join(CommsConfig cfg, EmbeddedMediaDriver d, int rank, List<String> endpoints) {
        Member m = null;
        try {
            m = new Member(cfg, d, true, rank, endpoints);
            m.connect();
            return m;
        } catch (RuntimeException e) {
            if (m != null) {
                m.close();  // releases d too
            } else {
                d.close();
            }
            throw e;
        }
    }

    private Member(CommsConfig cfg, EmbeddedMediaDriver driver, boolean ownsDriver, int rank, List<String> endpoints) {
        this(cfg, driver, ownsDriver, rank, endpoints, null);
    }

    /** @param idleName the idle strategy, or null for {@code comms.idle} (auto resolved) */
    private Member(CommsConfig cfg, EmbeddedMediaDriver driver, boolean ownsDriver, int rank, List<String> endpoints,
                   String idleName) {
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            throw new CommsException("comms copies floats in native byte order and needs a little-endian host");
        }
        this.size = endpoints.size();
        if (rank < 0 || rank >= size) {
            throw new IllegalArgumentException("rank " + rank + " is outside [0, " + size + ")");
        }
        this.cfg = cfg;
        this.rank = rank;
        this.endpoints = List.copyOf(endpoints);
        this.links = new Links(cfg, rank, this.endpoints);
        this.driver = driver;
        this.ownsDriver = ownsDriver;
        this.token = cfg.sessionToken();
        this.framePayload = cfg.mtuBytes() - 32 - LENGTH; // Aeron's data header, then ours
        this.idleName = idleName != null ? idleName : IdleChoice.idleFor(cfg, rank, this.endpoints);
        this.idle = IdleChoice.strategy(this.idleName, links.allIpc());
        this.helloFrom = new boolean[size];
        this.outgoing = new Message[size];
        this.incoming = new Message[size];
        for (int r = 0; r < size; r++) {
            outgoing[r] = new Message();
            incoming[r] = new Message();
        }
        this.intake = new Intake(token, rank, size, helloFrom, incoming, counters, this::describe);
        this.pubs = new ExclusivePublication[size];
        this.watch = new PeerWatch(size, intake, incoming, outgoing, pubs, this::describe);
        this.subs = new Subscription[2];
        try {
            if (links.listensUdp()) {
                subs[0] = driver.aeron().addSubscription(links.udpSubscription(), cfg.streamIdBase() + rank,
                        image -> { }, image -> watch.onImageGone(0, image));
            }
            if (links.listensIpc()) {
                subs[1] = driver.aeron().addSubscription("aeron:ipc", cfg.streamIdBase() + rank, image -> { },
                        image -> watch.onImageGone(1, image));
            }
        } catch (io.aeron.exceptions.RegistrationException e) {
            throw new CommsException("comms: " + describe(rank) + " cannot listen there: " + e.getMessage()
                    + (cfg.transport() != Transport.IPC ? "; another process holds that port (or the address is "
                    + "not this host's): start the job again, which picks free ports" : ""), e);
        }
        try {
            for (int r = 0; r < size; r++) {
                if (r != rank) {
                    pubs[r] = driver.aeron().addExclusivePublication(links.publication(r), cfg.streamIdBase() + r);
                }
            }
        } catch (io.aeron.exceptions.RegistrationException e) {
            throw new CommsException("comms: " + describe(rank) + " cannot open its streams: " + e.getMessage()
                    + (e.errorCode() == io.aeron.ErrorCode.STORAGE_SPACE ? ". The Aeron directory's file system is "
                    + "full: lower the term length (comms.termLengthBytes), give it more room (Docker: --shm-size), or "
                    + "put the Aeron directory elsewhere (comms.aeronDir)" : ""), e);
        }
    }

    /** How far a sibling's streams are from this member's ({@link #sibling}); the control channel uses +500. */
    static final int SIBLING_STREAMS = 100_000;
    private final List<Member> siblings = new ArrayList<>();

    /**
     * A second member of this group, at this rank, on streams of its own ({@code streamIdBase +}
     * {@link #SIBLING_STREAMS}) through the same media driver and endpoints, connected: a
     * collective, every member calls it at the same point. Its collectives run beside this
     * member's, on another thread (one thread per member: a member is not thread-safe), in the
     * background: it waits with {@link IdleChoice#BACKGROUND} (parks soon), leaving the cores to
     * the compute, since nothing waits on it until its results are due. Closed with this member.
     */
    public Member sibling() {
        return sibling(true);
    }

    /**
     * {@link #sibling()}, waiting in the background ({@code background}) or as this member waits (a
     * sibling the compute thread itself drives, whose results it waits for).
     */
    public Member sibling(boolean background) {
        checkUsable();
        Member s = new Member(cfg.withStreamIdBase(cfg.streamIdBase() + SIBLING_STREAMS * (siblings.size() + 1)),
                driver, false, rank, endpoints, background ? IdleChoice.BACKGROUND : idleName);
        siblings.add(s);
        s.connect();
        return s;
    }

    /** The idle strategy this member waits with ({@code comms.idle}, with {@code auto} resolved; a sibling: background). */
    public String idleStrategy() {
        return idleName;
    }

    /** "rank 2 (udp 127.0.0.1:40125)", "rank 1 (ipc stream 1001)", with AUTO "rank 3 (ipc 10.0.0.2:40125)". */
    public String describe(int r) {
        return links.describe(r);
    }

    /** Every member's endpoint, in rank order ({@code "ipc"}, or {@code host:port} over UDP). */
    public List<String> endpoints() {
        return endpoints;
    }

    public int rank() {
        return rank;
    }

    public int size() {
        return size;
    }

    public CommsCounters counters() {
        return counters;
    }

    public CommsConfig config() {
        return cfg;
    }

    /**
     * Waits until every peer is reachable and has reached this member (each sends a HELLO frame).
     *
     * @throws PeerException naming the peers still missing at the connect deadline
     */
    public void connect() {
        long deadline = System.nanoTime() + cfg.connectTimeoutMs() * 1_000_000L;
        boolean[] helloSent = new boolean[size];
        while (true) {
            int work = 0;
            boolean all = true;
            for (int r = 0; r < size; r++) {
                if (r == rank) {
                    continue;
                }
                if (!helloSent[r]) {
                    helloSent[r] = sendHello(r);
                    work += helloSent[r] ? 1 : 0;
                }
                all &= helloSent[r] && helloFrom[r];
            }
            work += poll();
            if (all) {
                opName = "idle";
                return;
            }
            if (System.nanoTime() > deadline) {
                List<Integer> missing = new ArrayList<>();
                StringBuilder sb = new StringBuilder();
                for (int r = 0; r < size; r++) {
                    if (r != rank && !(helloSent[r] && helloFrom[r])) {
                        missing.add(r);
                        sb.append(sb.length() == 0 ? "" : ", ").append(describe(r))
                                .append(helloSent[r] ? " (we reach it; it has not reached us)"
                                        : " (not subscribed to us yet)");
                    }
                }
                throw new PeerException(missing, "comms connect: " + describe(rank) + " could not connect to "
                        + sb + " within " + cfg.connectTimeoutMs() + " ms; is every member started, with the "
                        + "same endpoints and session token?");
            }
            idle.idle(work);
        }
    }

    private boolean sendHello(int r) {
        long result = pubs[r].tryClaim(LENGTH, claim);
        if (result < 0) {
            return false;
        }
        writeHeader(claim.buffer(), claim.offset(), HELLO, 0, 0, 0, 0);
        claim.commit();
        return true;
    }

    // ---- transfers ----------------------------------------------------------------------------

    /** Starts the next collective: clears the message slots and advances the sequence number. */
    int beginOp(String name) {
        checkUsable();
        if (started) {
            throw new IllegalStateException("comms " + name + " on " + describe(rank) + ": " + opName + " #" + op
                    + " was started and not finished; finish it first (one collective at a time per member)");
        }
        op++;
        step = 0;
        opName = name;
        clearSlots();
        return op;
    }

    /** Moves on to the next round of the current collective. */
    void nextStep() {
        step++;
        clearSlots();
    }

    private void clearSlots() {
        for (int r = 0; r < size; r++) {
            outgoing[r].active = false;
            incoming[r].active = false;
        }
    }

    /** Queues {@code bytes} bytes at (base, address) for {@code dst} in this round. */
    void send(int dst, Object base, long address, int bytes) {
        Message m = outgoing[dst];
        m.active = true;
        m.base = base;
        m.address = address;
        m.bytes = bytes;
        m.capacity = bytes;
        m.done = 0;
        m.frames = 0;
        m.limit = bytes;
    }

    /**
     * {@link #send}, held: its bytes leave only as {@link #release} allows (a sender that fills the
     * message while the round runs); an empty message leaves at once.
     */
    void sendHeld(int dst, Object base, long address, int bytes) {
        send(dst, base, address, bytes);
        outgoing[dst].limit = 0;
    }

    /** Lets the first {@code bytes} bytes of the held message to {@code dst} leave, and sends what the window takes now. */
    void release(int dst, int bytes) {
        Message m = outgoing[dst];
        if (!m.active || bytes < m.limit || bytes > m.bytes) {
            throw new IllegalArgumentException("comms " + opName + ": release of " + bytes + " bytes to " + describe(dst)
                    + ", whose message is " + (m.active ? m.bytes + " bytes, " + m.limit + " released" : "not queued"));
        }
        m.limit = bytes;
        while (started && !m.complete() && sendSome(dst, m) > 0) {
            // until the window (or the new limit) stops it
        }
    }

    /** Whether every queued message of this round may leave whole (nothing held back). */
    boolean released() {
        for (int r = 0; r < size; r++) {
            if (outgoing[r].active && outgoing[r].limit < outgoing[r].bytes) {
                return false;
            }
        }
        return true;
    }

    /**
     * Expects a message from {@code src} in this round, written to (base, address).
     *
     * @param bytes    its length, or -1 to take it from the frames (then at most capacity)
     * @param capacity room at the destination, in bytes
     */
    void receive(int src, Object base, long address, int bytes, int capacity) {
        Message m = incoming[src];
        m.active = true;
        m.base = base;
        m.address = address;
        m.bytes = bytes;
        m.capacity = capacity;
        m.done = 0;
        m.frames = 0;
    }

    int receivedBytes(int src) {
        return incoming[src].done;
    }

    void sendFloats(int dst, float[] a, int off, int n) {
        checkRange(a.length, off, n);
        send(dst, a, FLOAT_BASE + 4L * off, 4 * n);
    }

    void receiveFloats(int src, float[] a, int off, int n) {
        checkRange(a.length, off, n);
        receive(src, a, FLOAT_BASE + 4L * off, 4 * n, 4 * n);
    }

    void sendInts(int dst, int[] a, int off, int n) {
        checkRange(a.length, off, n);
        send(dst, a, INT_BASE + 4L * off, 4 * n);
    }

    void receiveInts(int src, int[] a, int off, int n) {
        checkRange(a.length, off, n);
        receive(src, a, INT_BASE + 4L * off, 4 * n, 4 * n);
    }

    void sendBytes(int dst, byte[] a, int off, int n) {
        checkRange(a.length, off, n);
        send(dst, a, BYTE_BASE + off, n);
    }

    /** A byte message of unknown length, at most {@code capacity} bytes. */
    void receiveBytes(int src, byte[] a, int off, int capacity) {
        checkRange(a.length, off, capacity);
        receive(src, a, BYTE_BASE + off, -1, capacity);
    }

    private static void checkRange(int length, int off, int n) {
        if (off < 0 || n < 0 || off + n > length || off + n < 0) {
            throw new IndexOutOfBoundsException("range [" + off + ", " + (off + n) + ") of an array of " + length);
        }
    }

    /**
     * Drives the queued messages of this round until every one is sent and received.
     *
     * @throws PeerException when the deadline passes or a peer goes away, naming the peers still
     *                       owed something
     */
    void transfer() {
        transfer(cfg.opTimeoutMs());
    }

    /**
     * Starts the queued messages of this round without waiting: sends what the publications take
     * now (all of it unless a message outruns the peer's window) and takes what has arrived. The
     * caller computes, then {@link #transfer()} finishes the round; nothing else may run on this
     * member in between. The bytes of a started round move while the caller computes: IPC frames
     * are in the peer's log once sent, UDP frames go out on the media driver's thread.
     */
    void start() {
        if (failure != null) {
            throw failure;
        }
        while (sendDue() > 0) {
            // until the windows (or held messages) stop it
        }
        poll();
        if (failure != null) {
            throw failure;
        }
        started = true;
    }

    /** Whether a round was {@link #start}ed and not yet finished by {@link #transfer()}. */
    boolean started() {
        return started;
    }

    /**
     * During a {@link #start}ed round: waits until the first {@code bytes} bytes of the message
     * from {@code src} have arrived (frames arrive in order, so they are in place), sending and
     * taking whatever else is due meanwhile, on {@code also} too (a started sibling, or null). The round stays started: {@link #transfer()} still
     * finishes it. This is how a receiver computes on the part of a message that is in while the
     * rest travels.
     *
     * @throws PeerException when the op deadline passes or a peer this round waits on goes away
     */
    void awaitReceived(int src, int bytes, Member also) {
        if (!started) {
            throw new IllegalStateException("comms " + opName + ": awaitReceived outside a started round");
        }
        Message in = incoming[src];
        if (!in.active || bytes > in.bytes) {
            throw new IllegalArgumentException("comms " + opName + ": awaits " + bytes + " bytes from " + describe(src)
                    + ", whose message in this round is " + (in.active ? in.bytes + " bytes" : "not expected"));
        }
        roundTimeoutMs = cfg.opTimeoutMs();
        long deadline = System.nanoTime() + roundTimeoutMs * 1_000_000L;
        while (in.done < bytes) {
            int work = driveOnce() + (also != null && also.started ? also.driveOnce() : 0);
            if (in.done >= bytes) {
                return;
            }
            checkPeers(deadline);
            idle.idle(work);
        }
    }

    /** {@link #transfer()} with its own deadline, {@code timeoutMs} from now. */
    void transfer(long timeoutMs) {
        started = false;
        roundTimeoutMs = timeoutMs;
        long deadline = System.nanoTime() + timeoutMs * 1_000_000L;
        while (true) {
            int work = driveOnce();
            boolean done = true;
            for (int r = 0; r < size; r++) {
                done &= outgoing[r].complete() && incoming[r].complete();
            }
            if (done) {
                return;
            }
            checkPeers(deadline);
            idle.idle(work);
        }
    }

    /** Sends what is due and takes what arrived, once; fails with what a peer sent wrong. Returns the frames moved. */
    private int driveOnce() {
        int work = sendDue() + poll();
        if (failure != null) {
            throw failure;
        }
        return work;
    }

    /** One burst of every message still owed a peer, as far as its window and release allow. */
    private int sendDue() {
        int work = 0;
        for (int r = 0; r < size; r++) {
            Message m = outgoing[r];
            if (m.active && !m.complete()) {
                work += sendSome(r, m);
            }
        }
        return work;
    }

    private int sendSome(int dst, Message m) {
        ExclusivePublication pub = pubs[dst];
        int sent = 0;
        while (sent < FRAMES_PER_SEND_BURST && !m.complete() && (m.done < m.limit || m.bytes == 0)) {
            int chunk = Math.min(framePayload, m.limit - m.done);
            long result = pub.tryClaim(LENGTH + chunk, claim);
            if (result < 0) {
                if (result == Publication.BACK_PRESSURED || result == Publication.ADMIN_ACTION) {
                    counters.backPressureEvents++;
                } else if (result == Publication.NOT_CONNECTED) {
                    counters.notConnectedEvents++;
                } else {
                    throw new PeerException(List.of(dst), "comms " + opName + " #" + op + ": the publication to "
                            + describe(dst) + " is " + (result == Publication.CLOSED ? "closed" : "at its maximum position"));
                }
                break;
            }
            MutableDirectBuffer b = claim.buffer();
            int at = claim.offset();
            writeHeader(b, at, DATA, op, step, m.done, m.bytes);
            if (chunk > 0) {
                UnsafeApi.copyMemory(m.base, m.address + m.done, b.byteArray(), b.addressOffset() + at + LENGTH, chunk);
            }
            claim.commit();
            m.done += chunk;
            m.frames++;
            counters.framesSent++;
            counters.bytesSent += chunk;
            sent++;
        }
        return sent;
    }

    private void writeHeader(MutableDirectBuffer b, int at, byte type, int opId, int stepId, int byteOffset, int total) {
        FrameHeader.write(b, at, token, type, rank, opId, stepId, byteOffset, total);
    }

    private int poll() {
        int work = 0;
        for (int s = 0; s < subs.length; s++) {
            Subscription sub = subs[s];
            if (sub == null) {
                continue;
            }
            polling = s;
            for (int i = 0, n = sub.imageCount(); i < n; i++) {
                Image image = sub.imageAtIndex(i);
                work += image.controlledPoll(handler, FRAGMENT_LIMIT);
                if (failure != null) {
                    return work;
                }
            }
        }
        return work;
    }

    private Action onFragment(DirectBuffer buffer, int offset, int length, Header header) {
        int verdict = intake.accept(buffer, offset, length, polling, header.sessionId(), op, step, opName);
        if (verdict == Intake.TAKEN) {
            return Action.CONTINUE;
        }
        return verdict == Intake.LATER ? Action.ABORT : fail(intake.failedSrc(), intake.failedWhat());
    }

    private Action fail(int src, String what) {
        failure = new PeerException(src < 0 ? List.of() : List.of(src), "comms " + opName + " #" + op + " on "
                + describe(rank) + ": malformed input: " + what);
        return Action.ABORT;
    }

    /** Fails if a peer this round waits on went away, or the deadline passed. */
    private void checkPeers(long deadline) {
        boolean goneOwing = watch.anyOwingPeerGone();  // takes in the sessions gone so far
        boolean late = System.nanoTime() > deadline;
        if (!late && !goneOwing) {
            return; // the common case, checked without allocating
        }
        PeerException e = watch.blame(late, "comms " + opName + " #" + op + " round " + step + " on " + describe(rank)
                + (late ? " timed out after " + roundTimeoutMs + " ms: " : ": "));
        if (e != null) {
            failure = e;
            throw e;
        }
    }

    private void checkUsable() {
        if (failure != null) {
            throw new CommsException("comms: " + describe(rank) + " failed earlier and cannot be used: "
                    + failure.getMessage(), failure);
        }
    }

    @Override
    public void close() {
        for (Member s : siblings) {
            s.close();
        }
        for (Subscription sub : subs) {
            if (sub != null) {
                sub.close();
            }
        }
        for (ExclusivePublication p : pubs) {
            if (p != null) {
                p.close();
            }
        }
        if (ownsDriver) {
            driver.close();
        }
    }
}
