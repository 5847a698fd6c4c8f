package io.roundhouse.worker.model;

import io.roundhouse.kernels.Activation;
import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Precision;
import io.roundhouse.kernels.Tensor;

/**
 * A Mixture-of-Experts FFN as a sequence of named steps:
 * <ol>
 *   <li>{@code route}: the {@link Router}'s table of token copies (experts and gates), and the
 *   capacity plan over it (timed as the route);</li>
 *   <li>{@code permute}: the kept copies gathered into expert order;</li>
 *   <li>{@code dispatch}: rows to the workers owning their experts ({@link ExpertExchange});</li>
 *   <li>{@code expert compute}: grouped FFN over the hosted experts' variable-size groups;</li>
 *   <li>{@code combine}: results back to where their tokens live;</li>
 *   <li>{@code un-permute}: each token's copies summed, weighted by their gates.</li>
 * </ol>
 * Backward runs the adjoint of each step in reverse. Dropped copies contribute nothing (the
 * block's residual carries their token). The router's auxiliary losses are computed in forward,
 * from statistics summed over the workers in the dispatch's first exchange, and their gradients
 * added in backward. With pre-gating ({@link #preGate}) a layer's route runs in the previous MoE
 * layer's forward, from that layer's input.
 *
 * <p>The expert FFN's GEMMs run at the model's {@link Precision}; the router's always run in fp32
 * (a bf16 rounding of the logits would change which experts a token goes to; Switch Transformer's
 * "selective precision" does the same).
 *
 * <p>Legend: N tokens (≤ maxN), D width, E experts, El hosted experts, S slots per token in the
 * router's copy table (K for top-k), F hidden, F1 pre-activation width, M kept copies.
 */
public final class MoeLayer {
    private final Backend be;
    private final String name;
    private final ExpertExchange exchange;
    private final int d;
    private final int e;
    private final int slots;     // the router's copy table's width S
    private final int f;
    private final Activation act;
    private final Precision precision;   // the experts' GEMMs; the router's stay fp32

    private final LinearRouter router;
    public final Param w1;       // [El, D, F1]
    public final Param b1;       // [El, F1] or null
    public final Param w2;       // [El, F, D]
    public final Param b2;       // [El, D] or null
    // Shared experts (DeepSeekMoE): one FFN of width S·F over every token, or null without them.
    private final Param sw1;     // [1, D, S·F1]
    private final Param sb1;     // [1, S·F1] or null
    private final Param sw2;     // [1, S·F, D]
    private final Param sb2;     // [1, D] or null
    private final Tensor sa;     // [maxN, S·F1]
    private final Tensor sh;     // [maxN, S·F]
    private final Tensor sy;     // [maxN, D] (also the input gradient in backward)
    private final Tensor sdh;    // [maxN, S·F]
    private final Tensor sda;    // [maxN, S·F1]
    private final int[] sharedOffsets = new int[2];

    // Forward state, allocated once for maxN tokens.
    private final Tensor rowToken;  // [maxN·S] int
    private final Tensor copyRow;   // [maxN, S] int
    private final Tensor xp;        // [maxN·S, D]
    private final Tensor a;         // [rowsIn, F1] (rowsIn = maxN·S, or more when experts are remote)
    private final Tensor h;         // [rowsIn, F]
    private final Tensor yr;        // [rowsIn, D]
    private final Tensor y;         // [maxN, D]
    private final int[] offsets;
    private final int[] localOffsets;
    private final int[] oneExpert;        // pipelining: localOffsets with every group but one empty
    private final int[] selected;
    private final float[] stats;          // the router's statistics, summed across workers
    // Backward state.
    private final Tensor dyp;       // [maxN·S, D]
    private final Tensor dGates;    // [maxN, S]
    private final Tensor dxr;       // [rowsIn, D]
    private final Tensor dh;        // [rowsIn, F]
    private final Tensor da;        // [rowsIn, F1]
    private final Tensor dx;        // [maxN, D]
    private ExpertResponse expertResponse;
    private Perturbation perturbation;
    private final int maxN;
    private final int rowsIn;

    private PhaseTimers timers = new PhaseTimers();
    private Tensor x;               // the last input [n, D]
    private Tensor xr;              // rows received for the hosted experts
    private Tensor yp;              // expert outputs back in source layout
    private int m;
    private int chosen;             // copies the router chose (m of them kept)
    private int routedRows;         // rows of the last routing
    private MoeLayer previous;      // pre-gating: the MoE layer whose input routes this one, or null
    private MoeLayer next;          // pre-gating: the MoE layer this one's input routes, or null
    private Tensor routerDx;        // pre-gating: this router's dL/d(previous layer's input), from backward

    /** The context of {@link #forward(Tensor, int)}: training, step 0, no noise keys (never set). */
    private static final RouterContext TRAINING = new RouterContext(true, 0, 0, 0, 0).fixed();

    public MoeLayer(Backend be, ParamStore ps, String name, ModelSpec spec, ExpertExchange exchange, int maxN) {
        this(be, ps, name, spec, exchange, maxN, true);
    }

    /** @param bias whether the experts have biases (the classifier's do; Mixtral-style experts do not) */
    public MoeLayer(Backend be, ParamStore ps, String name, ModelSpec spec, ExpertExchange exchange, int maxN,
                    boolean bias) {
        this.be = be;
        this.name = name;
        this.exchange = exchange;
        this.d = spec.dim();
        this.e = spec.experts();
        this.f = spec.expertHidden();
        this.act = spec.activation();
        this.precision = spec.precision();
        int el = exchange.localExperts();
        int f1 = act.preWidth(f);
        router = LinearRouter.create(be, ps, name, spec, exchange, maxN);  // first: the parameters' draws keep their order
        this.slots = router.slots();
        int rows = maxN * slots;
        int rowsIn = exchange.maxRowsIn(rows); // expert side: rows received from every worker
        this.maxN = maxN;
        this.rowsIn = rowsIn;
        int first = exchange.firstLocalExpert();
        w1 = ps.normalSlice(name + ".experts.w1", 1 / Math.sqrt(d), true, first, el, e, d, f1);
        b1 = bias ? ps.expertConstant(name + ".experts.b1", 0f, false, el, f1) : null;
        w2 = ps.normalSlice(name + ".experts.w2", 1 / Math.sqrt(f) / Math.sqrt(2.0 * spec.blocks()), true, first, el, e,
                f, d);
        b2 = bias ? ps.expertConstant(name + ".experts.b2", 0f, false, el, d) : null;
        int fs = spec.sharedExperts() * f;
        if (fs > 0) {
            // Dense parameters: every worker holds them, the all-reduce sums them.
            int fs1 = act.preWidth(fs);
            sw1 = ps.normal(name + ".shared.w1", 1 / Math.sqrt(d), true, 1, d, fs1);
            sb1 = bias ? ps.constant(name + ".shared.b1", 0f, false, 1, fs1) : null;
            sw2 = ps.normal(name + ".shared.w2", 1 / Math.sqrt(fs) / Math.sqrt(2.0 * spec.blocks()), true, 1, fs, d);
            sb2 = bias ? ps.constant(name + ".shared.b2", 0f, false, 1, d) : null;
            sa = be.allocate(name + ".shared.a", DType.FLOAT32, maxN, fs1);
            sh = be.allocate(name + ".shared.h", DType.FLOAT32, maxN, fs);
            sy = be.allocate(name + ".shared.y", DType.FLOAT32, maxN, d);
            sdh = be.allocate(name + ".shared.dh", DType.FLOAT32, maxN, fs);
            sda = be.allocate(name + ".shared.da", DType.FLOAT32, maxN, fs1);
        } else {
            sw1 = null;
            sb1 = null;
            sw2 = null;
            sb2 = null;
            sa = null;
            sh = null;
            sy = null;
            sdh = null;
            sda = null;
        }

        rowToken = be.allocate(name + ".rowToken", DType.INT32, rows);
        copyRow = be.allocate(name + ".copyRow", DType.INT32, maxN, slots);
        xp = be.allocate(name + ".xp", DType.FLOAT32, rows, d);
        a = be.allocate(name + ".a", DType.FLOAT32, rowsIn, f1);
        h = be.allocate(name + ".h", DType.FLOAT32, rowsIn, f);
        yr = be.allocate(name + ".yr", DType.FLOAT32, rowsIn, d);
        y = be.allocate(name + ".y", DType.FLOAT32, maxN, d);
        offsets = new int[e + 1];
        localOffsets = new int[el + 1];
        oneExpert = new int[el + 1];
        selected = new int[e];
        stats = new float[router.statsSize()];
        dyp = be.allocate(name + ".dyp", DType.FLOAT32, rows, d);
        dGates = be.allocate(name + ".dGates", DType.FLOAT32, maxN, slots);
        dxr = be.allocate(name + ".dxr", DType.FLOAT32, rowsIn, d);
        dh = be.allocate(name + ".dh", DType.FLOAT32, rowsIn, f);
        da = be.allocate(name + ".da", DType.FLOAT32, rowsIn, f1);
        dx = be.allocate(name + ".dx", DType.FLOAT32, maxN, d);
    }

    /** Makes the router an STN layer: {@code response} adds its term whenever {@code p} is on. */
    public void attach(StnResponse r, Perturbation p) {
        router.attach(r, p);
        this.perturbation = p;
    }

    /** The Self-Tuning Network's perturbation the layer's regularisers read (without a router response). */
    public void attach(Perturbation p) {
        router.attach(null, p);
        this.perturbation = p;
    }

    /** Gives the hosted experts a Self-Tuning Network response (see {@link ExpertResponse}). */
    public void attachExperts(ParamStore ps, Perturbation p) {
        this.perturbation = p;
        this.expertResponse = new ExpertResponse(be, ps, name, exchange.firstLocalExpert(), exchange.localExperts(),
                e, d, p.spec().tuned().size(), maxN, maxN * slots, rowsIn);
    }

    public StnResponse routerResponse() {
        return router.response();
    }

    /** The router's weights [D, E]. */
    public Param routerWeights() {
        return router.router;
    }

    /**
     * @param input    x[n,D] (already normalised)
     * @param capacity copies each expert accepts (0 = no limit)
     * @return y[n,D], valid until the next forward
     */
    public Tensor forward(Tensor input, int capacity) {
        return forward(input, capacity, TRAINING);
    }

    /**
     * @param capacity copies each expert accepts (0 = no limit; a router that bounds its experts'
     *                 copies itself, expert choice, ignores it)
     * @param ctx      training or evaluation, the step, and what keys the router's noise
     */
    public Tensor forward(Tensor input, int capacity, RouterContext ctx) {
        x = input;
        int n = input.dim(0);
        long t0 = System.nanoTime();
        // 1-2. route and plan: this layer's own, unless the previous MoE layer's input routed it
        // (pre-gating); then the next layer's from this layer's input
        if (previous == null) {
            route(input, capacity, ctx);
        } else if (routedRows != n) {
            throw new IllegalStateException(name + ": pre-gated for " + routedRows + " rows, forward of " + n);
        }
        if (next != null) {
            next.route(input, capacity, ctx.preGate());
        }
        long t1 = System.nanoTime();
        timers.add(PhaseTimers.Phase.ROUTE, t0, t1);
        // The router's statistics over every worker's tokens (the exchange sums them; local: as is),
        // with the next layer's when it is pre-gated: its counts reach the other workers now.
        if (next == null) {
            if (previous == null) {
                exchange.sumRouterStats(stats, offsets);
            }
        } else {
            exchange.sumRouterStats(previous == null ? stats : null, offsets, next.stats, next.offsets, next.exchange);
        }
        long tStats = System.nanoTime();
        timers.add(PhaseTimers.Phase.DISPATCH, t1, tStats);
        if (previous == null) {
            router.globalStats(stats);
        }
        if (next != null) {
            next.router.globalStats(next.stats);
        }
        Tensor gates = router.gates();
        be.permuteForward(xp.rows(m), input, rowToken, m);
        long t2 = System.nanoTime();
        timers.add(PhaseTimers.Phase.PERMUTE, tStats, t2);
        // 3. dispatch; 4. expert compute
        // (the scratch buffers whole: the op reads the rows the offsets cover, and no view is made
        // for a row count that changes every step)
        long t3;
        int mLocal;
        // the combine streams (each expert's results leave once computed) unless the Self-Tuning
        // Network's expert response still changes them after every expert has run
        boolean streamed = exchange.pipelines() && exchange.streamsCombine() && expertResponse == null;
        if (exchange.pipelines()) {
            // pipelined: each hosted expert computes once every worker's rows for it are in, while
            // the next experts' rows travel; every expert's FFN as in one call (same bits)
            xr = exchange.startDispatch(xp.rows(m), offsets, localOffsets);
            mLocal = localOffsets[localOffsets.length - 1];
            Tensor yOut = yr.rows(mLocal);
            t3 = System.nanoTime();
            timers.add(PhaseTimers.Phase.DISPATCH, t2, t3);
            for (int k = 0; k < oneExpert.length - 1; k++) {
                exchange.awaitExpert(k);
                long tk = System.nanoTime();
                timers.add(PhaseTimers.Phase.DISPATCH, t3, tk);
                be.expertFfnForward(yOut, a, h, xr, w1.value(), b1 == null ? null : b1.value(), w2.value(),
                        b2 == null ? null : b2.value(), onlyExpert(k), act, precision);
                t3 = System.nanoTime();
                timers.add(PhaseTimers.Phase.EXPERTS, tk, t3);
                if (streamed) {
                    exchange.releaseExpert(k, yOut);
                    long t = System.nanoTime();
                    timers.add(PhaseTimers.Phase.COMBINE, t3, t);
                    t3 = t;
                }
            }
            exchange.finish();
            long t = System.nanoTime();
            timers.add(PhaseTimers.Phase.DISPATCH, t3, t);
            t3 = t;
        } else {
            xr = exchange.dispatch(xp.rows(m), offsets, localOffsets);
            mLocal = localOffsets[localOffsets.length - 1];
            t3 = System.nanoTime();
            timers.add(PhaseTimers.Phase.DISPATCH, t2, t3);
            be.expertFfnForward(yr.rows(mLocal), a, h, xr, w1.value(), b1 == null ? null : b1.value(),
                    w2.value(), b2 == null ? null : b2.value(), localOffsets, act, precision);
        }
        if (expertResponse != null) {
            expertResponse.forward(yr.rows(mLocal), xr, localOffsets, rowToken, m, exchange, perturbation);
        }
        long t4 = System.nanoTime();
        timers.add(PhaseTimers.Phase.EXPERTS, t3, t4);
        // 5. combine, started (or streaming since the first expert): the shared experts (every
        // token, gate 1) run while the rows travel
        if (!streamed) {
            exchange.startCombine(yr.rows(mLocal), localOffsets, offsets);
        }
        long t5 = System.nanoTime();
        timers.add(PhaseTimers.Phase.COMBINE, t4, t5);
        if (sw1 != null) {
            sharedOffsets[1] = n;
            be.expertFfnForward(sy.rows(n), sa.rows(n), sh.rows(n), input, sw1.value(), sb1 == null ? null : sb1.value(),
                    sw2.value(), sb2 == null ? null : sb2.value(), sharedOffsets, act, precision);
            long t = System.nanoTime();
            timers.add(PhaseTimers.Phase.EXPERTS, t5, t);
            t5 = t;
        }
        yp = streamed ? exchange.finishCombine() : exchange.finish();
        long t6 = System.nanoTime();
        timers.add(PhaseTimers.Phase.COMBINE, t5, t6);
        // 6. un-permute, weighted by the gates; 7. the shared experts' output added
        Tensor out = y.rows(n);
        be.unpermuteForward(out, yp, copyRow.rows(n), gates);
        if (sw1 != null) {
            be.axpy(out, 1f, sy.rows(n));
        }
        timers.add(PhaseTimers.Phase.UNPERMUTE, t6, System.nanoTime());
        return out;
    }

    /**
     * Step 1 and the plan of step 2 for {@code routerInput}'s rows: the router's choice, the capacity
     * plan and the router's local statistics (not yet summed over the workers).
     */
    private void route(Tensor routerInput, int capacity, RouterContext ctx) {
        int n = routerInput.dim(0);
        router.forward(routerInput, ctx);
        m = be.dispatchPlan(rowToken, copyRow.rows(n), offsets, selected, router.copies(), e,
                router.bounded() ? 0 : capacity);
        chosen = 0;
        for (int c : selected) {
            chosen += c;
        }
        router.localStats(stats, selected);
        routedRows = n;
    }

    /**
     * Pre-gating (Pre-gated MoE): {@code next}, the next MoE layer, is routed from this layer's
     * input during this layer's forward, and its counts travel with this layer's statistics; its
     * router's input gradient flows back into this layer's input.
     */
    public void preGate(MoeLayer next) {
        if (next.previous != null || this.next != null || next == this) {
            throw new IllegalStateException("pre-gating chains each MoE layer to the next one once");
        }
        this.next = next;
        next.previous = this;
    }

    /**
     * @param dy dL/dy[n,D]
     * @return dL/dx[n,D] (expert path + router path, including the auxiliary losses)
     */
    public Tensor backward(Tensor dy) {
        int n = x.dim(0);
        int mLocal = localOffsets[localOffsets.length - 1];
        // 6. un-permute → gradient for each kept copy and for each gate
        long tStart = System.nanoTime();
        be.unpermuteBackward(dyp.rows(m), dGates.rows(n), dy, yp, copyRow.rows(n), router.gates());
        long t0 = System.nanoTime();
        timers.add(PhaseTimers.Phase.UNPERMUTE, tStart, t0);
        // 5. combine's backward is a dispatch, started: the shared experts' backward (their input
        // gradient lands in sy, added to the routed path's below) runs while the rows travel
        exchange.startCombineBackward(dyp.rows(m), offsets, localOffsets);
        long t1 = System.nanoTime();
        timers.add(PhaseTimers.Phase.DISPATCH, t0, t1);
        if (sw1 != null) {
            be.expertFfnBackward(sy.rows(n), sw1.grad(), sb1 == null ? null : sb1.grad(), sw2.grad(),
                    sb2 == null ? null : sb2.grad(), dy, x, sa.rows(n), sh.rows(n), sw1.value(), sw2.value(),
                    sharedOffsets, act, sdh.rows(n), sda.rows(n), precision);
            long t = System.nanoTime();
            timers.add(PhaseTimers.Phase.EXPERTS, t1, t);
            t1 = t;
        }
        // 4. experts: the input half (pipelined like forward's: expert by expert as their rows come);
        // the Self-Tuning Network's response (its exchange books itself as combine); 3. dispatch's
        // backward, a combine, started: the weight half runs meanwhile
        Tensor dyr;
        long t3;
        if (exchange.pipelines()) {
            Tensor dxOut = dxr.rows(mLocal);
            for (int k = 0; k < oneExpert.length - 1; k++) {
                dyr = exchange.awaitExpert(k);
                long tk = System.nanoTime();
                timers.add(PhaseTimers.Phase.DISPATCH, t1, tk);
                be.expertFfnBackwardData(dxOut, dyr, a, w1.value(), w2.value(), onlyExpert(k), act, dh, da, precision);
                t1 = System.nanoTime();
                timers.add(PhaseTimers.Phase.EXPERTS, tk, t1);
            }
            dyr = exchange.finish();
            t3 = System.nanoTime();
            timers.add(PhaseTimers.Phase.DISPATCH, t1, t3);
        } else {
            dyr = exchange.finish();
            long t2 = System.nanoTime();
            timers.add(PhaseTimers.Phase.DISPATCH, t1, t2);
            be.expertFfnBackwardData(dxr.rows(mLocal), dyr, a, w1.value(), w2.value(), localOffsets, act,
                    dh, da, precision);
            t3 = System.nanoTime();
            timers.add(PhaseTimers.Phase.EXPERTS, t2, t3);
        }
        if (expertResponse != null) {
            expertResponse.backward(dxr.rows(mLocal), dyr, xr, localOffsets, rowToken, m, exchange, perturbation);
        }
        exchange.startDispatchBackward(dxr.rows(mLocal), localOffsets, offsets);
        long t4 = System.nanoTime();
        timers.add(PhaseTimers.Phase.COMBINE, t3, t4);
        be.expertFfnBackwardWeights(w1.grad(), b1 == null ? null : b1.grad(), w2.grad(), b2 == null ? null : b2.grad(),
                dyr, xr, h, localOffsets, da, precision);
        long t5 = System.nanoTime();
        timers.add(PhaseTimers.Phase.EXPERTS, t4, t5);
        Tensor dxp = exchange.finish();
        long t6 = System.nanoTime();
        timers.add(PhaseTimers.Phase.COMBINE, t5, t6);
        // 2. permute's backward is the (unweighted) un-permute
        Tensor out = dx.rows(n);
        be.permuteBackward(out, dxp, rowToken, m);
        long t7 = System.nanoTime();
        timers.add(PhaseTimers.Phase.PERMUTE, t6, t7);
        // 1. router: gates and auxiliary losses → its input (this layer's, or with pre-gating the
        // previous MoE layer's, which takes it in its own backward) and the router's weights
        Tensor dRouter = router.backward(dGates.rows(n));
        if (previous == null) {
            be.axpy(out, 1f, dRouter);
        } else {
            routerDx = dRouter;
        }
        if (next != null) {
            be.axpy(out, 1f, next.routerDx);  // the next layer's backward ran first
        }
        if (sw1 != null) {
            be.axpy(out, 1f, sy.rows(n));
        }
        timers.add(PhaseTimers.Phase.ROUTE, t7, System.nanoTime());
        return out;
    }

    /** The last dispatch's hosted-expert groups with every group but k's empty (k's rows where they are). */
    private int[] onlyExpert(int k) {
        for (int j = 0; j < oneExpert.length; j++) {
            oneExpert[j] = localOffsets[j <= k ? k : k + 1];
        }
        return oneExpert;
    }

    /** Pre-gating: the last backward's gradient of this layer's router with respect to the previous layer's input. */
    Tensor routerInputGradient() {
        return routerDx;
    }

    /** After the optimizer's step: the router's own update (see {@link Router#afterStep}). */
    public void afterStep() {
        router.afterStep();
    }

    /** Where forward records its phase times (the classifier shares one across blocks). */
    public void setTimers(PhaseTimers timers) {
        this.timers = timers;
    }

    /** Kept copies in the last forward. */
    public int kept() {
        return m;
    }

    /** Copies of the last forward dropped by the capacity limit. */
    public int dropped() {
        return chosen - m;
    }

    /** The router's copy table of the last forward, [n, S] int: the expert of each copy, −1 for an empty slot. */
    public Tensor copies() {
        return router.copies();
    }

    /**
     * The last forward's statistics into {@code stats}, as MoE layer {@code layer}: its router
     * losses and dropped copies added to the model's, its kept copies per expert and dropped
     * copies, and in training the sum of its routing distributions' entropies.
     */
    public void addStats(StepStats stats, int layer, boolean train) {
        stats.loadBalanceLoss += loadBalanceLoss();
        stats.zLoss += zLoss();
        stats.droppedCopies += dropped();
        stats.droppedByLayer[layer] = dropped();
        keptPerExpert(stats.expertLoad[layer]);
        stats.routerEntropy[layer] = train ? router.entropySum() : 0;
    }

    /** Kept copies per expert in the last forward, into {@code out[E]}. */
    public void keptPerExpert(int[] out) {
        for (int j = 0; j < e; j++) {
            out[j] = offsets[j + 1] - offsets[j];
        }
    }

    public float loadBalanceLoss() {
        return router.loadBalanceLoss();
    }

    public float zLoss() {
        return router.zLoss();
    }

    public int experts() {
        return e;
    }

    public String name() {
        return name;
    }
}
