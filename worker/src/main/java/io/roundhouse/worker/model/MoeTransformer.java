package io.roundhouse.worker.model;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.IntFunction;

/**
 * A decoder-only MoE transformer language model: token embedding → L × {@link TransformerBlock}
 * (RMSNorm → causal attention with rotary embeddings → residual; RMSNorm → MoE or dense SwiGLU FFN
 * → residual) → final norm → output projection → next-token cross-entropy (plus the router losses).
 * A batch is B sequences of T tokens, rows in sequence order.
 *
 * <p>Parameter names follow Mixtral's where there is one: {@code embed.table} (embed_tokens),
 * {@code blockB.attention.wq/wk/wv/wo} (q/k/v/o_proj), {@code blockB.moe.router.w} (gate),
 * {@code blockB.moe.experts.w1} (w1 and w3, gate columns first) and {@code .w2}, {@code head.w}
 * (lm_head; none when {@code tiedEmbeddings}: the table's transpose); {@code blockB.attention.wg} is
 * the output gate Mixtral does not have.
 *
 * <p>A Self-Tuning Network perturbs every token (row) on its own: the residual and attention
 * dropout, the router's jitter and losses take a rate per row, and the responses (on the embedding
 * table, each block's attention output projection, the routers, the experts, the head) see each
 * row's perturbation.
 */
public final class MoeTransformer implements Model {
    /** Dropout streams: stream = step·STREAMS_PER_STEP + 1 + 4b + site (see {@link TransformerBlock}). */
    static final long STREAMS_PER_STEP = 1024;

    /** What a Self-Tuning Network can tune in this model, and where it can add responses. */
    public static final List<Hyper> TUNABLE = List.of(Hyper.DROPOUT_BLOCK, Hyper.DROPOUT_ATTENTION, Hyper.ROUTER_JITTER,
            Hyper.LOAD_BALANCE, Hyper.Z_LOSS);
    public static final List<String> STN_LAYERS = List.of("embed", "attention", "router", "experts", "head");

    private final Backend be;
    private java.util.function.IntConsumer blockDone = b -> { };  // see onBlockBackward
    private final LmSpec spec;
    private final ParamStore params;
    private final int maxSeqs;
    public final Param table;          // [V, D]
    final TransformerBlock[] blocks;
    private final List<MoeLayer> moeLayers = new ArrayList<>();
    private final NormLayer finalNorm;
    private final LinearLayer head;
    private final Tensor embedded;     // [maxN, D]
    private final Tensor dTable;       // [V, D]
    private final Tensor losses;       // [maxN]
    private final Tensor probs;        // [maxN, V]
    private final Tensor dLogits;      // [maxN, V]
    private final Tensor attentionRates;  // [maxN] the fixed attention-dropout rate, row by row
    private final float[] hostLosses;
    private final PhaseTimers timers = new PhaseTimers();
    private final Perturbation perturbation;  // null without a Self-Tuning Network
    private final StnResponse embedResponse;  // null without one on the embedding
    private final Param hyperU;               // the STN's unconstrained λ (and its Adam moments)
    private final Param hyperRho;             // the STN's unconstrained σ (and its Adam moments)
    private Tensor ids;
    private Tensor targets;
    private Tensor logits;     // [rows, V] the last forward's head output
    private int rows;

    /**
     * @param maxSeqs   sequences one forward takes at most
     * @param exchanges the expert exchange of MoE block b (a {@link LocalExchange} in one process)
     */
    public MoeTransformer(Backend be, LmSpec spec, long seed, int maxSeqs, IntFunction<ExpertExchange> exchanges) {
        spec.moe().stn().check("language model", TUNABLE, STN_LAYERS);
        if (spec.moe().blocks() > (STREAMS_PER_STEP - 1) / 4) {
            throw new IllegalArgumentException("at most " + (STREAMS_PER_STEP - 1) / 4 + " blocks");
        }
        this.be = be;
        this.spec = spec;
        this.maxSeqs = maxSeqs;
        this.params = new ParamStore(be, seed);
        int d = spec.moe().dim();
        int v = spec.vocabulary();
        int maxN = maxSeqs * spec.seqLen();
        // Tied, the table is also the output projection: initialised as one (std 1/√D), since the
        // logits are the normalised state's dot products with its rows.
        this.table = params.normal("embed.table", spec.tiedEmbeddings() ? 1 / Math.sqrt(d) : 1.0, false, v, d);
        this.blocks = new TransformerBlock[spec.moe().blocks()];
        for (int b = 0; b < blocks.length; b++) {
            blocks[b] = new TransformerBlock(be, params, "block" + b, spec, spec.isMoe(b) ? exchanges.apply(b) : null,
                    maxN, timers);
            if (blocks[b].moe != null) {
                if (spec.moe().router().preGating() && !moeLayers.isEmpty()) {
                    moeLayers.get(moeLayers.size() - 1).preGate(blocks[b].moe);
                }
                moeLayers.add(blocks[b].moe);
            }
        }
        this.finalNorm = new NormLayer(be, params, "final.norm", spec.moe().norm(), d, maxN);
        this.head = spec.tiedEmbeddings() ? LinearLayer.tied(be, "head", table, maxN)
                : new LinearLayer(be, params, "head", d, v, false, 1 / Math.sqrt(d), maxN);
        this.embedded = be.allocate("embedded", DType.FLOAT32, maxN, d);
        this.dTable = be.allocate("embed.dTable", DType.FLOAT32, v, d);
        this.losses = be.allocate("losses", DType.FLOAT32, maxN);
        this.probs = be.allocate("probs", DType.FLOAT32, maxN, v);
        this.dLogits = be.allocate("dLogits", DType.FLOAT32, maxN, v);
        this.attentionRates = be.allocate("attention.rates", DType.FLOAT32, maxN);
        this.hostLosses = new float[maxN];
        // A Self-Tuning Network's parameters come after every plain one (and from their own
        // generator), so the plain parameters start exactly as without it.
        StnSpec stn = spec.moe().stn();
        if (stn.enabled()) {
            int hy = stn.tuned().size();
            this.perturbation = new Perturbation(be, stn, maxN);
            this.embedResponse = stn.has("embed")
                    ? StnResponse.table(be, params, "embed", v, d, hy, 1.0, maxN) : null;
            for (TransformerBlock b : blocks) {
                if (stn.has("attention")) {
                    LinearLayer wo = b.attention.wo;
                    wo.attach(new StnResponse(be, params, b.attention.name() + ".wo", spec.heads() * spec.headDim(), d,
                            hy, 1 / Math.sqrt(d), maxN), perturbation);
                }
                if (b.moe == null) {
                    continue;
                }
                if (stn.has("experts")) {
                    b.moe.attachExperts(params, perturbation);
                }
                if (stn.has("router")) {
                    b.moe.attach(new StnResponse(be, params, b.moe.name() + ".router", d, spec.moe().experts(), hy,
                            0.1 / Math.sqrt(d), maxN), perturbation);
                } else {
                    b.moe.attach(perturbation);
                }
            }
            if (stn.has("head")) {
                head.attach(new StnResponse(be, params, "head", d, v, hy, 1 / Math.sqrt(d), maxN), perturbation);
            }
            this.hyperU = params.state("stn.lambda", hy);
            this.hyperRho = params.state("stn.sigma", hy);
        } else {
            this.perturbation = null;
            this.embedResponse = null;
            this.hyperU = null;
            this.hyperRho = null;
        }
    }

    /** A single-process model: every MoE block hosts all experts. */
    public static MoeTransformer local(Backend be, LmSpec spec, long seed, int maxSeqs) {
        return new MoeTransformer(be, spec, seed, maxSeqs, b -> new LocalExchange(spec.moe().experts()));
    }

    @Override
    public StepStats forward(Batch batch, int n, boolean train, long seed, long step, long firstExample,
                             StepStats stats) {
        int t = spec.seqLen();
        if (n < 1 || n > maxSeqs) {
            throw new IllegalArgumentException("batch of " + n + " sequences does not fit the model: need 1.." + maxSeqs);
        }
        int rowsN = n * t;
        this.rows = rowsN;
        this.ids = batch.inputs().rows(rowsN);
        this.targets = batch.targets().rows(rowsN);
        long t0 = System.nanoTime();
        Tensor h = embedded.rows(rowsN);
        be.permuteForward(h, table.value(), ids, rowsN);
        if (embedResponse != null) {
            embedResponse.forward(h, ids, perturbation);
        }
        timers.add(PhaseTimers.Phase.EMBED, t0, System.nanoTime());
        float residual = train ? (float) current(Hyper.DROPOUT_BLOCK) : 0f;
        Tensor residualRates = train ? perExample(Hyper.DROPOUT_BLOCK) : null;
        Tensor rates = train ? perExample(Hyper.DROPOUT_ATTENTION) : null;
        if (train && rates == null && current(Hyper.DROPOUT_ATTENTION) > 0) {
            rates = attentionRates.rows(rowsN);
            be.fill(rates, (float) current(Hyper.DROPOUT_ATTENTION));
        }
        int capacity = train ? spec.moe().capacity(rowsN) : 0;
        long streamBase = step * STREAMS_PER_STEP;
        stats.loadBalanceLoss = 0;
        stats.zLoss = 0;
        stats.droppedCopies = 0;
        int layer = 0;
        for (int b = 0; b < blocks.length; b++) {
            h = blocks[b].forward(h, n, train, residual, residualRates, rates, capacity, step, seed,
                    streamBase + 1 + 4L * b,
                    firstExample);
            if (blocks[b].moe != null) {
                blocks[b].moe.addStats(stats, layer++, train);
            }
        }
        long tHead = System.nanoTime();
        logits = head.forward(finalNorm.forward(h));
        be.crossEntropyForward(losses.rows(rowsN), probs.rows(rowsN), logits, targets);
        be.read(losses.rows(rowsN), hostLosses);
        double sum = 0;
        for (int r = 0; r < rowsN; r++) {
            sum += hostLosses[r];
        }
        timers.add(PhaseTimers.Phase.HEAD, tHead, System.nanoTime());
        stats.examples = n;
        stats.tokens = rowsN;
        stats.routedRows = rowsN;
        stats.crossEntropy = sum / rowsN;
        stats.correct = 0;
        return stats;
    }

    @Override
    public void onBlockBackward(java.util.function.IntConsumer done) {
        this.blockDone = done;
    }

    @Override
    public void backward(int globalExamples) {
        long t0 = System.nanoTime();
        long named = timers.total();
        be.crossEntropyBackward(dLogits.rows(rows), probs.rows(rows), targets, 1f / ((long) globalExamples * spec.seqLen()));
        Tensor d = finalNorm.backward(head.backward(dLogits.rows(rows), true));
        long tBlocks = System.nanoTime();
        timers.add(PhaseTimers.Phase.HEAD, t0, tBlocks);
        for (int b = blocks.length - 1; b >= 0; b--) {
            d = blocks[b].backward(d);
            blockDone.accept(b);
        }
        long tEmbed = System.nanoTime();
        be.permuteBackward(dTable, d, ids, rows);
        be.axpy(table.grad(), 1f, dTable);
        if (embedResponse != null) {
            embedResponse.backward(null, d, ids, perturbation);
        }
        long end = System.nanoTime();
        timers.add(PhaseTimers.Phase.EMBED, tEmbed, end);
        // What the named phases (the head, the embedding, the blocks' attention, MoE and exchanges) did not take
        timers.add(PhaseTimers.Phase.BACKWARD, end - t0 - (timers.total() - named));
    }

    @Override
    public void afterStep() {
        for (int i = 0; i < moeLayers.size(); i++) {  // every step: no iterator
            moeLayers.get(i).afterStep();
        }
    }

    /**
     * The next-token logits [n·T, V] of the first {@code n} sequences of {@code batch} (rows in
     * sequence order), after a forward in evaluation mode: no dropout, no router jitter, no capacity
     * limit. Valid until the next forward. The batch's targets must be token ids (the forward also
     * computes the loss). For comparing the model with another implementation of it (an export).
     */
    public Tensor logits(Batch batch, int n) {
        forward(batch, n, false, 0, 0, 0, new StepStats(moeLayers.size(), spec.moe().experts()));
        return logits;
    }

    /**
     * The next-token logits after {@code token} at position {@code pos} of one sequence, with the
     * blocks' key/value caches ({@code cachesK/V[b]}: [maxLen, Hkv·dh]) holding positions [0, pos).
     */
    public Tensor decode(Tensor token, int pos, Tensor[] cachesK, Tensor[] cachesV) {
        Tensor h = embedded.rows(1);
        be.permuteForward(h, table.value(), token, 1);
        for (int b = 0; b < blocks.length; b++) {
            h = blocks[b].decode(h, pos, cachesK[b], cachesV[b]);
        }
        return head.forward(finalNorm.forward(h));
    }

    @Override
    public String describe() {
        ModelSpec m = spec.moe();
        long moe = moeLayers.size();
        return String.format(Locale.ROOT, "MoE transformer LM: V=%d T=%d D=%d L=%d (%d MoE: E=%d top-%d F=%d swiglu; %d "
                        + "dense: F=%d) heads %d/%d kv, rope θ=%.0f, attention gate %s, %s%s",
                spec.vocabulary(), spec.seqLen(), m.dim(), m.blocks(), moe, m.experts(), m.topK(), m.expertHidden(),
                blocks.length - moe, spec.denseHidden(), spec.heads(), spec.kvHeads(), spec.ropeTheta(),
                spec.attentionGate() ? "on" : "off", m.norm().name().toLowerCase(Locale.ROOT),
                spec.tiedEmbeddings() ? ", tied embeddings" : "");
    }

    public LmSpec lmSpec() {
        return spec;
    }

    @Override
    public ModelSpec spec() {
        return spec.moe();
    }

    @Override
    public Objective objective() {
        return Objective.BITS_PER_BYTE;
    }

    @Override
    public ParamStore params() {
        return params;
    }

    @Override
    public Backend backend() {
        return be;
    }

    @Override
    public PhaseTimers timers() {
        return timers;
    }

    @Override
    public int maxBatch() {
        return maxSeqs;
    }

    @Override
    public int tokensPerExample() {
        return spec.seqLen();
    }

    @Override
    public int moeLayers() {
        return moeLayers.size();
    }

    /** λ of {@code h}: the tuner's current value when a Self-Tuning Network tunes it, else the spec's. */
    private double current(Hyper h) {
        return perturbation == null ? spec.fixed(h) : perturbation.current(h, spec.fixed(h));
    }

    /** This weight step's rate of {@code h} per row, or null when not tuned. */
    private Tensor perExample(Hyper h) {
        return perturbation == null ? null : perturbation.perExample(h);
    }

    @Override
    public Perturbation perturbation() {
        return perturbation;
    }

    @Override
    public Param hyperLambda() {
        return hyperU;
    }

    @Override
    public Param hyperSigma() {
        return hyperRho;
    }
}
