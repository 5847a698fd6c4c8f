package io.roundhouse.worker.parallel;

import io.roundhouse.comms.Collectives;
import io.roundhouse.kernels.Backend;
import io.roundhouse.worker.model.ExpertExchange;
import io.roundhouse.worker.model.LocalExchange;
import io.roundhouse.worker.model.Param;
import io.roundhouse.worker.model.ParamDigest;
import io.roundhouse.worker.model.ParamStore;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * This worker's place among W: its rank, the expert placement, and the group operations the
 * trainer needs (expert exchanges, dense-gradient sync, sums of metrics, the global parameter
 * digest). One worker ({@link #single}) needs no comms: every operation is local.
 *
 * <p>Every method that talks to the group is a collective: all workers call it in the same order.
 */
public final class WorkerGroup {
    private final Collectives c;   // null for one worker
    private final ExpertPlacement placement;
    private final int rank;
    private final int size;
    private final int[] gatherCounts;   // gatherExpert's per-rank floats
    private final int[] gatherOffsets;  // and where they land
    private Collectives streams;        // the sibling the MoE layers' combines stream over, once made

    private WorkerGroup(Collectives c, ExpertPlacement placement) {
        this.c = c;
        this.placement = placement;
        this.rank = c == null ? 0 : c.member().rank();
        this.size = c == null ? 1 : c.member().size();
        this.gatherCounts = new int[size];
        this.gatherOffsets = new int[size];
    }

    /** One worker hosting every expert. */
    public static WorkerGroup single(int experts) {
        return new WorkerGroup(null, new ExpertPlacement(experts, 1));
    }

    /** Rank {@code c.member().rank()} of the connected group {@code c}. */
    public static WorkerGroup of(Collectives c, int experts) {
        if (c.member().size() == 1) {
            return single(experts);
        }
        return new WorkerGroup(c, new ExpertPlacement(experts, c.member().size()));
    }

    public int rank() {
        return rank;
    }

    public int size() {
        return size;
    }

    /** Each worker's comms endpoint in rank order ({@code "ipc"}, or {@code host:port} over UDP); one worker: "local". */
    public java.util.List<String> endpoints() {
        return c == null ? java.util.List.of("local") : c.member().endpoints();
    }

    public boolean distributed() {
        return c != null;
    }

    public ExpertPlacement placement() {
        return placement;
    }

    /**
     * Start of worker {@code r}'s shard of {@code n} items: shards are contiguous and their sizes
     * differ by at most one (worker r holds {@code [start(n, r), start(n, r + 1))}).
     */
    public static int shardStart(int n, int r, int workers) {
        return (int) ((long) n * r / workers);
    }

    /** The exchange of one MoE block ({@code maxRowsOut}: most rows this worker dispatches per call). */
    public ExpertExchange exchange(Backend be, int dim, int maxRowsOut) {
        if (c == null) {
            return new LocalExchange(placement.experts());
        }
        if (streams == null && c.member().config().streamsCombines() && everyWorkerHostsSeveral()) {
            // The pipelined layers' combines stream over one sibling (a collective: every worker
            // builds its first exchange at the same point, and every worker streams or none does),
            // shared since the layers run in turn.
            streams = c.foregroundSibling();
        }
        return new AllToAllExchange(be, c, streams, placement, dim, maxRowsOut);
    }

    private boolean everyWorkerHostsSeveral() {
        for (int w = 0; w < size; w++) {
            if (placement.expertCount(w) < 2) {
                return false;
            }
        }
        return true;
    }

    /**
     * The dense-gradient all-reduce for {@code params} (also summing {@code extra} values), or
     * null for one worker; with {@code overlapBuckets} ({@code comms.overlap=all}) its buckets
     * overlap the backward (a collective then: it opens the members' siblings).
     */
    public DenseGradientSync gradientSync(Backend be, ParamStore params, int extra, boolean overlapBuckets) {
        return c == null ? null : new DenseGradientSync(be, params, c, placement, extra, overlapBuckets);
    }

    /** Sums {@code v} over the workers, in place (every worker gets the same bits). */
    public void sum(float[] v) {
        if (c != null) {
            c.allReduceSum(v, 0, v.length);
        }
    }

    /**
     * SHA-256 of the whole model as one worker would hold it: dense parameters from this worker
     * (they are replicas), each expert parameter assembled from its hosts in expert order. Equal
     * to {@link ParamStore#digest()} of a one-worker model with the same values; every worker gets
     * the same string.
     */
    public String digest(ParamStore params) {
        if (c == null) {
            return params.digest();
        }
        ParamDigest d = rank == 0 ? new ParamDigest() : null;
        for (Param p : params.all()) {
            if (!DenseGradientSync.isExpert(p)) {
                if (d != null) {
                    d.add(p.name(), params.read(p));
                }
                continue;
            }
            float[] whole = gatherExpert(params, p);
            if (d != null) {
                d.add(p.name(), whole);
            }
        }
        byte[] hex = new byte[64];
        if (d != null) {
            byte[] h = d.hex().getBytes(StandardCharsets.US_ASCII);
            System.arraycopy(h, 0, hex, 0, h.length);
        }
        int n = c.broadcastBytes(0, hex, 0, hex.length);
        return new String(hex, 0, n, StandardCharsets.US_ASCII);
    }

    /**
     * Expert parameter {@code p} whole, as one worker holds it (every expert's slice in expert
     * order), at rank 0; null elsewhere. A collective: every worker calls it for the same parameter.
     */
    public float[] gatherExpert(ParamStore params, Param p) {
        float[] v = params.read(p);
        if (c == null) {
            return v;
        }
        byte[] mine = toBytes(v);
        int per = v.length / placement.expertCount(rank);
        byte[][] parts = new byte[size][];
        int[] lengths = new int[size];
        for (int r = 0; r < size; r++) {
            parts[r] = new byte[4 * per * placement.expertCount(r)];
        }
        c.gatherBytes(0, mine, mine.length, parts, lengths);
        if (rank != 0) {
            return null;
        }
        float[] whole = new float[per * placement.experts()];
        for (int r = 0; r < size; r++) {
            ByteBuffer.wrap(parts[r], 0, lengths[r]).asFloatBuffer()
                    .get(whole, per * placement.firstExpert(r), lengths[r] / 4);
        }
        return whole;
    }

    /**
     * {@link #gatherExpert} into the caller's buffers, allocating nothing: {@code mine} holds this
     * worker's slice of an expert parameter, {@code whole} (read at rank 0 only) gets every expert's
     * in expert order. A collective.
     */
    public void gatherExpert(float[] mine, float[] whole) {
        if (c == null) {
            System.arraycopy(mine, 0, whole, 0, mine.length);
            return;
        }
        int per = mine.length / placement.expertCount(rank);
        for (int r = 0; r < size; r++) {
            gatherCounts[r] = per * placement.expertCount(r);
            gatherOffsets[r] = per * placement.firstExpert(r);
        }
        c.gatherV(0, mine, gatherCounts, whole, gatherOffsets);
    }

    /** Every worker's {@code text} at rank 0, in rank order; null elsewhere. A collective. */
    public java.util.List<String> gatherStrings(String text) {
        byte[] mine = text.getBytes(StandardCharsets.UTF_8);
        if (c == null) {
            return java.util.List.of(text);
        }
        byte[][] parts = new byte[size][];
        int[] lengths = new int[size];
        for (int r = 0; r < size; r++) {
            parts[r] = new byte[1 << 16];
        }
        if (mine.length > parts[0].length) {
            throw new IllegalArgumentException("gatherStrings: " + mine.length + " bytes, at most " + parts[0].length);
        }
        c.gatherBytes(0, mine, mine.length, parts, lengths);
        if (rank != 0) {
            return null;
        }
        java.util.List<String> out = new java.util.ArrayList<>();
        for (int r = 0; r < size; r++) {
            out.add(new String(parts[r], 0, lengths[r], StandardCharsets.UTF_8));
        }
        return out;
    }

    /** Rank 0's {@code text} on every worker (others pass anything). A collective. */
    public String broadcastString(String text) {
        if (c == null) {
            return text;
        }
        byte[] buf = new byte[1 << 16];
        int len = 0;
        if (rank == 0) {
            byte[] b = text.getBytes(StandardCharsets.UTF_8);
            System.arraycopy(b, 0, buf, 0, b.length);
            len = b.length;
        }
        int n = c.broadcastBytes(0, buf, 0, rank == 0 ? len : buf.length);
        return new String(buf, 0, n, StandardCharsets.UTF_8);
    }

    /** Trainable values of the whole model (every expert once), whichever share this worker holds. */
    public long globalParameterCount(ParamStore params) {
        long n = 0;
        for (Param p : params.trainable()) {
            long size = p.value().size();
            n += DenseGradientSync.isExpert(p) ? size / placement.expertCount(rank) * placement.experts() : size;
        }
        return n;
    }

    private static byte[] toBytes(float[] v) {
        ByteBuffer b = ByteBuffer.allocate(4 * v.length);
        b.asFloatBuffer().put(v);
        return b.array();
    }
}
