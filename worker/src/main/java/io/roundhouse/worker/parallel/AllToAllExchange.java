package io.roundhouse.worker.parallel;

import io.roundhouse.comms.Collectives;
import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.HostBuffer;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.worker.model.ExpertExchange;

/**
 * Expert parallelism over the comms all-to-all: this worker's token copies go to the workers that
 * host their experts, and the results come back.
 *
 * <p>Dispatch: every worker learns how many rows each source sends to each of its experts with the
 * router statistics ({@link #sumRouterStats}, one all-gather per layer that the MoE layer makes
 * anyway, so counts cost no round of their own); then the rows move. Rows arrive
 * grouped by source worker, then expert; they are reordered to expert-major, which the grouped
 * expert FFN needs. Combine is the exact inverse (reorder back, all-to-all with the sizes swapped)
 * and lands each result where its row was in the dispatched tensor. Backward reuses the forward's
 * layout: dispatch's backward is a combine, combine's backward a dispatch, with no count exchange.
 *
 * <p>With replicas (W > E) each worker hosts one expert and sends its copies for expert e to
 * {@link ExpertPlacement#destination}; the blocks then leave in destination-rank order and come
 * back to their expert-order places.
 *
 * <p>Rows travel through the backend's host buffers ({@link Backend#allocateHost}: page-locked on a
 * GPU), which the comms send from and receive into in place; they are sized once for the worst
 * case (every worker sends all its copies here). Every worker must make the same sequence of calls
 * (they are collectives).
 *
 * <p>Overlap ({@code comms.overlap}, on by default): a started exchange ({@link #startCombine} and
 * the backward ones) sends its rows and returns; the layer computes what does not need the result,
 * and {@link #finish} takes the rows that arrived. Off, or with the two-level all-to-all, the rows
 * move before start returns. The bits are the same either way.
 *
 * <p>Pipelining (overlap on, the flat all-to-all, more than one hosted expert): an exchange towards
 * the experts ({@link #startDispatch}, {@link #startCombineBackward}) can be awaited expert by
 * expert ({@link #awaitExpert}): every source sends its block in hosted-expert order, so expert k's
 * rows are in once each source's first rows (those for experts 0…k) are, and the layer computes
 * expert k while the rows of k+1… travel.
 */
public final class AllToAllExchange implements ExpertExchange {
    private final Backend be;
    private final Collectives c;
    private final ExpertPlacement placement;
    private final int rank;
    private final int workers;
    private final int experts;
    private final int local;
    private final int first;
    private final int d;

    private final HostBuffer flat;      // rows in the dispatched (global expert) layout, [maxOut·D]
    private final HostBuffer outgoing;  // the same rows in destination-rank order (replication only)
    private final HostBuffer arrived;   // rows as they arrive: source-major, then expert, [maxIn·D]
    private final HostBuffer ordered;   // rows expert-major, [maxIn·D]
    private final Tensor xr;         // dispatch result [maxIn, D]
    private final Tensor yp;         // combine result [maxOut, D]
    private final Tensor dxp;        // dispatchBackward result [maxOut, D]
    private final Tensor dyr;        // combineBackward result [maxIn, D]

    private final int[] dest;            // [E] the worker this one sends its copies of expert e to
    private final int[] sendOrder;       // [E] experts by (destination, expert); identity without replicas
    private final boolean reorder;       // whether sendOrder is not the identity
    private final int[] offsets;         // [E+1] group boundaries of the last dispatch
    private final int[] recvExpertRows;  // [W·local] rows from source s for local expert e
    private final int[] sendFloats;      // [W]
    private final int[] recvFloats;      // [W]
    private final int[] sourceStart;     // [W+1] row where each source's block starts in `arrived`
    private int rowsOut;
    private int rowsIn;
    private float[] gatherSend = new float[0];  // [stats | rows per global expert]
    private float[] gathered = new float[0];    // [W · that]
    private float[] allGathered = new float[0]; // allGather's result
    private final boolean twoLevel;             // comms.allToAll=hierarchical
    private final boolean overlap;              // comms.overlap: started exchanges return before the rows arrive
    private final int[] pairRows;               // [W·W] rows source s sends rank t in the last dispatch
    private final int[] matrix;                 // [W·W] floats s → t of the current exchange
    private boolean countsKnown;                // recvExpertRows came with the router statistics
    private Tensor sideR;                       // dispatchSide's rows at the experts, [maxIn, w]
    private Tensor sideP2;                      // combineSide's rows at the sources, [maxRowsOut, w]
    private final int[] sendWidth;              // sendFloats at another width
    private final int[] recvWidth;              // recvFloats at another width
    private Tensor pendingDst;                  // where the started exchange's rows go, or null
    private int pendingWidth;                   // its row width
    private boolean pendingToExperts;           // its direction
    private Tensor pendingOut;                  // towards the experts: the rows of pendingDst it fills
    private int placed;                         // towards the experts: hosted experts already in pendingOut
    private final boolean pipeline;             // overlap, flat all-to-all, several hosted experts
    private final Collectives streams;          // pipelining: the sibling the combine streams over, or null
    private int streamed;                       // hosted experts whose results the streamed combine released
    private final int[] expertStart;            // [local+1] first row of each hosted expert, expert-major (last dispatch)

    /**
     * @param maxRowsOut most rows this worker dispatches per call (maxN·K)
     */
    public AllToAllExchange(Backend be, Collectives c, ExpertPlacement placement, int d, int maxRowsOut) {
        this(be, c, null, placement, d, maxRowsOut);
    }

    /**
     * @param streams a sibling of {@code c} (its compute-thread one, shared by the layers) over which
     *                the forward's combine leaves expert by expert ({@link #releaseExpert}); null: it
     *                leaves whole
     */
    public AllToAllExchange(Backend be, Collectives c, Collectives streams, ExpertPlacement placement, int d,
                            int maxRowsOut) {
        if (placement.workers() != c.member().size()) {
            throw new IllegalArgumentException("placement for " + placement.workers() + " workers, group of "
                    + c.member().size());
        }
        this.be = be;
        this.c = c;
        this.twoLevel = c.member().config().twoLevelAllToAll();
        this.overlap = c.member().config().overlaps();
        this.pairRows = new int[placement.workers() * placement.workers()];
        this.matrix = new int[placement.workers() * placement.workers()];
        this.placement = placement;
        this.rank = c.member().rank();
        this.workers = placement.workers();
        this.experts = placement.experts();
        this.local = placement.expertCount(rank);
        this.first = placement.firstExpert(rank);
        this.d = d;
        int maxIn = maxRowsOut * workers;
        this.flat = be.allocateHost("exchange.flat", maxRowsOut * d);
        this.arrived = be.allocateHost("exchange.arrived", maxIn * d);
        this.ordered = be.allocateHost("exchange.ordered", maxIn * d);
        this.xr = be.allocate("exchange.xr", DType.FLOAT32, maxIn, d);
        this.yp = be.allocate("exchange.yp", DType.FLOAT32, maxRowsOut, d);
        this.dxp = be.allocate("exchange.dxp", DType.FLOAT32, maxRowsOut, d);
        this.dyr = be.allocate("exchange.dyr", DType.FLOAT32, maxIn, d);
        this.dest = new int[experts];
        for (int e = 0; e < experts; e++) {
            dest[e] = placement.destination(rank, e);
        }
        this.sendOrder = java.util.stream.IntStream.range(0, experts).boxed()
                .sorted(java.util.Comparator.<Integer>comparingInt(e -> dest[e]).thenComparingInt(e -> e))
                .mapToInt(Integer::intValue).toArray();
        boolean identity = true;
        for (int e = 0; e < experts; e++) {
            identity &= sendOrder[e] == e;
        }
        this.reorder = !identity;
        this.outgoing = reorder ? be.allocateHost("exchange.outgoing", maxRowsOut * d) : null;
        this.offsets = new int[experts + 1];
        this.recvExpertRows = new int[workers * local];
        this.sendFloats = new int[workers];
        this.recvFloats = new int[workers];
        this.sourceStart = new int[workers + 1];
        this.sendWidth = new int[workers];
        this.recvWidth = new int[workers];
        this.expertStart = new int[local + 1];
        this.pipeline = overlap && !twoLevel && local > 1;
        // (replicas reorder the sent blocks, and the streamed combine receives in place: every
        // worker hosting several experts, as the streams sibling's maker checks, means none)
        this.streams = pipeline && !reorder ? streams : null;
    }

    /** Whether a pipelined layer's combine can leave expert by expert ({@link #releaseExpert}). */
    @Override
    public boolean streamsCombine() {
        return streams != null;
    }

    /**
     * Hosted expert k's results (rows of {@code yr}, expert-major) leave for their sources, over the
     * streams sibling: the combine is one held all-to-all, begun at expert 0, of which each source's
     * block (its rows, expert by expert, where its dispatched rows arrived) is released up to
     * expert k. Expert k's rows in {@code arrived} were placed already, so they can hold its results.
     */
    @Override
    public void releaseExpert(int k, Tensor yr) {
        if (streams == null || k != streamed || k >= placed) {
            throw new IllegalStateException("releaseExpert(" + k + "): " + (streams == null ? "this exchange does not "
                    + "stream its combine" : "hosted expert " + streamed + " is next, and " + placed + " are placed"));
        }
        if (k == 0) {
            streams.startAllToAllVHeld(arrived.bytes(), 0, recvFloats, flat.bytes(), 0, sendFloats);
        }
        int n = expertStart[k + 1] - expertStart[k];
        be.readRows(yr, expertStart[k], n, ordered, expertStart[k] * d);
        int at = expertStart[k] * d;
        for (int w = 0; w < workers; w++) {
            int rows = recvExpertRows[w * local + k] * d;
            arrived.put(rowInSource(w, k) * d, ordered, at, rows);
            at += rows;
        }
        for (int w = 0; w < workers; w++) {
            streams.release(w, rowsThrough(w, k) * d);
        }
        streamed = k + 1;
    }

    /** The streamed combine, every hosted expert released: waits for the results and returns yp. */
    @Override
    public Tensor finishCombine() {
        if (streams == null || streamed != local) {
            throw new IllegalStateException("finishCombine: " + (streams == null ? "this exchange does not stream its "
                    + "combine" : "only " + streamed + " of " + local + " hosted experts were released"));
        }
        streamed = 0;
        streams.finish();
        return arrivedToSources(yp, d);
    }

    /**
     * With {@code comms.overlap} on, the flat all-to-all and more than one hosted expert: the
     * exchanges towards the experts can be awaited expert by expert ({@link #awaitExpert}), since
     * every source sends its rows in expert order.
     */
    @Override
    public boolean pipelines() {
        return pipeline;
    }

    @Override
    public int localExperts() {
        return local;
    }

    @Override
    public int firstLocalExpert() {
        return first;
    }

    @Override
    public int maxRowsIn(int maxRowsOut) {
        return maxRowsOut * workers;
    }

    /**
     * One all-gather of {@code [stats | rows per global expert]}: the statistics are summed in rank
     * order (as {@link Collectives#allReduceSum} does for small vectors, the same bits on every
     * worker), and each source's row counts for the hosted experts are kept for the next
     * {@link #dispatch}, which then skips its count exchange: one round per layer less.
     */
    @Override
    public void sumRouterStats(float[] stats, int[] offsets) {
        sumRouterStats(stats, offsets, null, null, null);
    }

    @Override
    public void sumRouterStats(float[] stats, int[] offsets, float[] nextStats, int[] nextOffsets, ExpertExchange next) {
        int s = stats == null ? 0 : stats.length + experts;        // this layer's part: stats | counts
        int ns = nextStats == null ? 0 : nextStats.length + experts;
        int n = s + ns;
        if (gatherSend.length != n) {
            gatherSend = new float[n];
            gathered = new float[workers * n];
        }
        if (stats != null) {
            pack(stats, offsets, 0);
        }
        if (nextStats != null) {
            pack(nextStats, nextOffsets, s);
        }
        c.allGather(gatherSend, 0, n, gathered);
        if (stats != null) {
            sum(stats, n, 0);
            counts(gathered, n, stats.length);
        }
        if (nextStats != null) {
            if (!(next instanceof AllToAllExchange nextExchange)) {
                throw new IllegalArgumentException("pre-gating: the next layer's exchange is a " + next);
            }
            sum(nextStats, n, s);
            nextExchange.counts(gathered, n, s + nextStats.length);
        }
    }

    /** Writes a layer's statistics and its rows per global expert at {@code at} of the send buffer. */
    private void pack(float[] stats, int[] offsets, int at) {
        System.arraycopy(stats, 0, gatherSend, at, stats.length);
        for (int e = 0; e < experts; e++) {
            gatherSend[at + stats.length + e] = offsets[e + 1] - offsets[e];  // exact: rows < 2^24
        }
    }

    /** stats[j] = Σ over workers of the gathered entry at {@code at + j} (rank order: the same bits everywhere). */
    private void sum(float[] stats, int n, int at) {
        for (int j = 0; j < stats.length; j++) {
            float sum = gathered[at + j];
            for (int r = 1; r < workers; r++) {
                sum += gathered[r * n + at + j];
            }
            stats[j] = sum;
        }
    }

    /** The rows each source sends to each hosted expert, from the gathered counts {@code g} at {@code at}. */
    private void counts(float[] g, int n, int at) {
        if (twoLevel) {  // only the two-level all-to-all needs every pair's rows
            java.util.Arrays.fill(pairRows, 0);
            for (int w = 0; w < workers; w++) {
                for (int e = 0; e < experts; e++) {
                    pairRows[w * workers + placement.destination(w, e)] += Math.round(g[w * n + at + e]);
                }
            }
        }
        for (int w = 0; w < workers; w++) {
            for (int e = 0; e < local; e++) {
                // With replicas, source w sends expert first+e's copies to one of its hosts only.
                recvExpertRows[w * local + e] = placement.destination(w, first + e) == rank
                        ? Math.round(g[w * n + at + first + e]) : 0;
            }
        }
        countsKnown = true;
    }

    @Override
    public int rank() {
        return rank;
    }

    @Override
    public float[] allGather(float[] send, int len) {
        if (allGathered.length < workers * len) {
            allGathered = new float[workers * len];
        }
        c.allGather(send, 0, len, allGathered);
        return allGathered;
    }

    @Override
    public Tensor dispatch(Tensor xp, int[] offsets, int[] localOffsets) {
        plan(offsets, localOffsets);
        return toExperts(xp, xr, d);
    }

    @Override
    public Tensor startDispatch(Tensor xp, int[] offsets, int[] localOffsets) {
        if (!pipeline) {
            throw new IllegalStateException("startDispatch: this exchange does not pipeline (see pipelines())");
        }
        plan(offsets, localOffsets);
        startToExperts(xp, xr, d);
        return pendingOut;
    }

    /**
     * Waits for hosted expert k's rows from every source: each source's block holds its rows expert
     * by expert, so they are in once its first (rows for experts 0…k) floats are.
     */
    @Override
    public Tensor awaitExpert(int k) {
        if (!pipeline || pendingDst == null || !pendingToExperts) {
            throw new IllegalStateException("awaitExpert: no pipelined exchange towards the experts was started");
        }
        if (k != placed) {
            throw new IllegalStateException("awaitExpert(" + k + "): the hosted experts come in order; next is " + placed);
        }
        for (int w = 0; w < workers; w++) {
            // the streamed combine's frames move meanwhile too (its earlier experts' results)
            c.awaitReceived(w, rowsThrough(w, k) * pendingWidth, streamed > 0 ? streams : null);
        }
        place(k);
        return pendingOut;
    }

    /** The sizes of the next exchanges from the router statistics' counts and {@code offsets}. */
    private void plan(int[] offsets, int[] localOffsets) {
        if (!countsKnown) {
            throw new IllegalStateException("dispatch without the router statistics of this layer: call "
                    + "sumRouterStats(stats, offsets) first (it carries the row counts)");
        }
        countsKnown = false;
        System.arraycopy(offsets, 0, this.offsets, 0, experts + 1);
        rowsOut = offsets[experts];
        rowsIn = 0;
        java.util.Arrays.fill(sendFloats, 0);
        for (int e = 0; e < experts; e++) {
            sendFloats[dest[e]] += (offsets[e + 1] - offsets[e]) * d;
        }
        for (int w = 0; w < workers; w++) {
            int rows = 0;
            for (int e = 0; e < local; e++) {
                rows += recvExpertRows[w * local + e];
            }
            sourceStart[w] = rowsIn;
            recvFloats[w] = rows * d;
            rowsIn += rows;
        }
        sourceStart[workers] = rowsIn;
        localOffsets[0] = 0;
        for (int e = 0; e < local; e++) {
            int n = 0;
            for (int w = 0; w < workers; w++) {
                n += recvExpertRows[w * local + e];
            }
            localOffsets[e + 1] = localOffsets[e] + n;
        }
        System.arraycopy(localOffsets, 0, expertStart, 0, local + 1);
    }

    @Override
    public void startCombine(Tensor yr, int[] localOffsets, int[] offsets) {
        startToSources(yr, yp, d);
    }

    @Override
    public void startDispatchBackward(Tensor dxr, int[] localOffsets, int[] offsets) {
        startToSources(dxr, dxp, d);
    }

    @Override
    public void startCombineBackward(Tensor dyp, int[] offsets, int[] localOffsets) {
        startToExperts(dyp, dyr, d);
    }

    @Override
    public Tensor finish() {
        if (pendingDst == null) {
            throw new IllegalStateException("finish: no exchange was started");
        }
        Tensor dst = pendingDst;
        pendingDst = null;
        c.finish();
        return pendingToExperts ? arrivedToExperts() : arrivedToSources(dst, pendingWidth);
    }

    @Override
    public Tensor dispatchSide(Tensor sideP) {
        int w = sideP.rowSize();
        checkSide(w);
        if (sideR == null || sideR.rowSize() != w) {
            // Once per width (the perturbation's), at the first step: the rows fit the buffers above.
            sideR = be.allocate("exchange.sideR", DType.FLOAT32, xr.dim(0), w);
            sideP2 = be.allocate("exchange.sideP", DType.FLOAT32, yp.dim(0), w);
        }
        return toExperts(sideP, sideR, w);
    }

    @Override
    public Tensor combineSide(Tensor sideRows) {
        checkSide(sideRows.rowSize());
        return toSources(sideRows, sideP2, sideRows.rowSize());
    }

    private void checkSide(int w) {
        if (w > d) {
            throw new IllegalArgumentException("side rows of width " + w + " are wider than the exchange's " + d);
        }
    }

    /** Rows in dispatched layout here → expert-major rows at their hosts (layout of the last dispatch). */
    private Tensor toExperts(Tensor src, Tensor dst, int d) {
        startToExperts(src, dst, d);
        return finish();
    }

    /** Expert-major rows here → back to the workers they came from, in their dispatched layout. */
    private Tensor toSources(Tensor src, Tensor dst, int d) {
        startToSources(src, dst, d);
        return finish();
    }

    private void pending(Tensor dst, int width, boolean toExperts) {
        if (pendingDst != null) {
            throw new IllegalStateException("an exchange was started and not finished");
        }
        pendingDst = dst;
        pendingWidth = width;
        pendingToExperts = toExperts;
        pendingOut = toExperts ? dst.rows(rowsIn) : null;
        placed = 0;
    }

    /** {@link #toExperts} up to the rows being on their way. */
    private void startToExperts(Tensor src, Tensor dst, int d) {
        pending(dst, d, true);
        be.read(src.rows(rowsOut), flat, 0);
        HostBuffer send = flat;
        if (reorder) {
            int at = 0;
            for (int e : sendOrder) {
                int n = (offsets[e + 1] - offsets[e]) * d;
                outgoing.put(at, flat, offsets[e] * d, n);
                at += n;
            }
            send = outgoing;
        }
        if (twoLevel) {
            c.startAllToAllV2D(send.bytes(), 0, arrived.bytes(), 0, matrix(true, d));
        } else {
            allToAllV(send, scaled(sendFloats, sendWidth, d), arrived, scaled(recvFloats, recvWidth, d));
        }
    }

    /** The rows that arrived, expert-major, into the destination (those of the experts not yet placed). */
    private Tensor arrivedToExperts() {
        if (placed > 0) {
            for (int e = placed; e < local; e++) {
                place(e);
            }
            return pendingOut;
        }
        int d = pendingWidth;
        int at = 0;
        for (int e = 0; e < local; e++) {
            for (int w = 0; w < workers; w++) {
                int n = recvExpertRows[w * local + e] * d;
                ordered.put(at, arrived, rowInSource(w, e) * d, n);
                at += n;
            }
        }
        be.write(pendingOut, ordered, 0);
        return pendingOut;
    }

    /** Hosted expert k's rows from every source, in source order, into their expert-major place. */
    private void place(int k) {
        int d = pendingWidth;
        int at = expertStart[k] * d;
        for (int w = 0; w < workers; w++) {
            int n = recvExpertRows[w * local + k] * d;
            ordered.put(at, arrived, rowInSource(w, k) * d, n);
            at += n;
        }
        be.writeRows(pendingOut, expertStart[k], expertStart[k + 1] - expertStart[k], ordered, expertStart[k] * d);
        placed = k + 1;
    }

    /** {@link #toSources} up to the rows being on their way. */
    private void startToSources(Tensor src, Tensor dst, int d) {
        pending(dst, d, false);
        be.read(src.rows(rowsIn), ordered, 0);
        int at = 0;
        for (int e = 0; e < local; e++) {
            for (int w = 0; w < workers; w++) {
                int n = recvExpertRows[w * local + e] * d;
                arrived.put(rowInSource(w, e) * d, ordered, at, n);
                at += n;
            }
        }
        if (twoLevel) {
            c.startAllToAllV2D(arrived.bytes(), 0, (reorder ? outgoing : flat).bytes(), 0, matrix(false, d));
        } else {
            allToAllV(arrived, scaled(recvFloats, recvWidth, d), reorder ? outgoing : flat, scaled(sendFloats, sendWidth, d));
        }
    }

    /** The flat all-to-all: started (overlap on; {@link #finish} completes it), or whole. */
    private void allToAllV(HostBuffer send, int[] sendCounts, HostBuffer recv, int[] recvCounts) {
        if (overlap) {
            c.startAllToAllV(send.bytes(), 0, sendCounts, recv.bytes(), 0, recvCounts);
        } else {
            c.allToAllV(send.bytes(), 0, sendCounts, recv.bytes(), 0, recvCounts);
        }
    }

    /** The rows that came back, in their dispatched layout, into {@code dst}. */
    private Tensor arrivedToSources(Tensor dst, int d) {
        if (reorder) {
            int from = 0;
            for (int e : sendOrder) {
                int n = (offsets[e + 1] - offsets[e]) * d;
                flat.put(offsets[e] * d, outgoing, from, n);
                from += n;
            }
        }
        Tensor out = dst.rows(rowsOut);
        be.write(out, flat, 0);
        return out;
    }

    /**
     * Every pair's floats for the two-level all-to-all, rows of width {@code w}: towards the
     * experts ({@code toExperts}: s → t as dispatched) or back (t → s).
     */
    private int[] matrix(boolean toExperts, int w) {
        for (int s = 0; s < workers; s++) {
            for (int t = 0; t < workers; t++) {
                int rows = toExperts ? pairRows[s * workers + t] : pairRows[t * workers + s];
                matrix[s * workers + t] = rows * w;
            }
        }
        return matrix;
    }

    /** The per-peer float counts of the last dispatch (at width d) for rows of width {@code w}. */
    private int[] scaled(int[] floats, int[] out, int w) {
        if (w == d) {
            return floats;
        }
        for (int p = 0; p < floats.length; p++) {
            out[p] = floats[p] / d * w;
        }
        return out;
    }

    /** Source w's rows for local experts 0…k: the prefix of its block that holds them. */
    private int rowsThrough(int w, int k) {
        return rowInSource(w, k + 1) - sourceStart[w];
    }

    /** First row, in the arrival layout, of source w's rows for local expert e. */
    private int rowInSource(int w, int e) {
        int row = sourceStart[w];
        for (int q = 0; q < e; q++) {
            row += recvExpertRows[w * local + q];
        }
        return row;
    }
}
