package io.roundhouse.worker.model;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.IntFunction;

/**
 * The NiNformer image classifier (PAPERS.md): input[N, c·S·S] → dropout → patches of p×p
 * ({@link Backend#patchesForward}) → a linear embedding to D → L × {@link NinBlock} → norm →
 * the mean over each image's P patches → head (linear to C) → softmax cross-entropy. Each patch is
 * a token of the MoE layers, so a batch of N images routes N·P rows; a worker holding images
 * [f, f + n) of a global batch routes rows [f·P, (f + n)·P), and its masks and router noise are
 * those one worker with the whole batch draws.
 *
 * <p>A Self-Tuning Network perturbs each routed row (patch), as the language model's tokens
 * ({@link #TUNABLE}). All buffers are allocated here, for at most {@code maxN} images per forward.
 */
public final class Ninformer implements ImageModel {
    /**
     * Dropout and jitter streams: stream = step·STREAMS_PER_STEP + site (0 input dropout; block b:
     * 1+3b the gating unit's residual, 2+3b the FFN's, 3+3b the router's jitter).
     */
    static final long STREAMS_PER_STEP = 1024;

    /**
     * What a Self-Tuning Network can tune in this model, and where it can add responses: as for the
     * language model's tokens, one perturbation per routed row (patch), which every per-row consumer
     * reads (the residual dropout, the router's jitter and losses, the embedding's, routers' and
     * experts' responses). The input dropout and the head act on whole images: not tunable here.
     */
    public static final List<Hyper> TUNABLE = List.of(Hyper.DROPOUT_BLOCK, Hyper.ROUTER_JITTER, Hyper.LOAD_BALANCE,
            Hyper.Z_LOSS);
    public static final List<String> STN_LAYERS = List.of("embed", "router", "experts");

    private final Backend be;
    private java.util.function.IntConsumer blockDone = b -> { };  // see onBlockBackward
    private final NinformerSpec spec;
    private final ParamStore params;
    private final int maxN;
    private final int p;
    final LinearLayer embed;
    final NinBlock[] blocks;
    final NormLayer finalNorm;
    final LinearLayer head;
    private final List<MoeLayer> moeLayers = new ArrayList<>();
    private final Tensor inputDropped;  // [maxN, inputs]; after a forward, the input gradient's scratch
    private Tensor dInput;              // [maxN, inputs], allocated at the first input gradient
    private float inputDropout;         // the last forward's input dropout rate
    private long inputDropoutSeed;
    private long inputDropoutStream;
    private long inputDropoutFirst;
    private final Tensor patches;       // [maxN·P, c·p²]
    private final Tensor pooled;        // [maxN, D]
    private final Tensor dNormed;       // [maxN·P, D]
    private final ClassificationLoss loss;
    private final PhaseTimers timers = new PhaseTimers();
    private final Perturbation perturbation;  // null without a Self-Tuning Network
    private final Param hyperU;               // the STN's unconstrained λ (and its Adam moments)
    private final Param hyperRho;             // the STN's unconstrained σ (and its Adam moments)
    private final Tensor[] blockOutputs;  // block b's output in the last forward, [n·P, D]
    private final long[] blockNanos;      // each block's forward time, summed since construction

    /** @param exchanges the expert exchange of MoE block b (a {@link LocalExchange} in one process) */
    public Ninformer(Backend be, NinformerSpec spec, long seed, int maxN, IntFunction<ExpertExchange> exchanges) {
        ModelSpec s = spec.moe();
        if (s.blocks() > (STREAMS_PER_STEP - 1) / 3) {
            throw new IllegalArgumentException("at most " + (STREAMS_PER_STEP - 1) / 3 + " blocks");
        }
        s.stn().check("NiNformer", TUNABLE, STN_LAYERS);
        this.be = be;
        this.spec = spec;
        this.maxN = maxN;
        this.p = spec.patches();
        this.params = new ParamStore(be, seed);
        int rows = maxN * p;
        this.embed = new LinearLayer(be, params, "embed", spec.patchInputs(), s.dim(), true,
                1 / Math.sqrt(spec.patchInputs()), rows, s.precision());
        this.blocks = new NinBlock[s.blocks()];
        this.blockOutputs = new Tensor[s.blocks()];
        this.blockNanos = new long[s.blocks()];
        MoeLayer previous = null;
        for (int b = 0; b < blocks.length; b++) {
            blocks[b] = new NinBlock(be, params, "block" + b, spec, spec.isMoe(b) ? exchanges.apply(b) : null, maxN,
                    timers);
            MoeLayer moe = blocks[b].moe;
            if (moe != null) {
                moeLayers.add(moe);
                if (s.router().preGating() && previous != null) {
                    previous.preGate(moe);
                }
                previous = moe;
            }
        }
        this.finalNorm = new NormLayer(be, params, "final.norm", s.norm(), s.dim(), rows);
        this.head = new LinearLayer(be, params, "head", s.dim(), s.classes(), true, 1 / Math.sqrt(s.dim()), maxN,
                s.precision());
        this.inputDropped = be.allocate("input.dropped", DType.FLOAT32, maxN, s.inputs());
        this.patches = be.allocate("patches", DType.FLOAT32, rows, spec.patchInputs());
        this.pooled = be.allocate("pooled", DType.FLOAT32, maxN, s.dim());
        this.dNormed = be.allocate("dNormed", DType.FLOAT32, rows, s.dim());
        this.loss = new ClassificationLoss(be, maxN, s.classes());
        // A Self-Tuning Network's parameters come after every plain one (and from their own
        // generator), so the plain parameters start exactly as without it.
        StnSpec stn = s.stn();
        if (stn.enabled()) {
            int h = stn.tuned().size();
            this.perturbation = new Perturbation(be, stn, rows);
            if (stn.has("embed")) {
                embed.attach(new StnResponse(be, params, "embed", spec.patchInputs(), s.dim(), h,
                        1 / Math.sqrt(spec.patchInputs()), rows), perturbation);
            }
            for (MoeLayer moe : moeLayers) {
                if (stn.has("experts")) {
                    moe.attachExperts(params, perturbation);
                }
                if (stn.has("router")) {
                    moe.attach(new StnResponse(be, params, moe.name() + ".router", s.dim(), s.experts(), h,
                            0.1 / Math.sqrt(s.dim()), rows), perturbation);
                } else {
                    moe.attach(perturbation);
                }
            }
            this.hyperU = params.state("stn.lambda", h);
            this.hyperRho = params.state("stn.sigma", h);
        } else {
            this.perturbation = null;
            this.hyperU = null;
            this.hyperRho = null;
        }
    }

    /** A single-process model: every MoE block hosts all experts. */
    public static Ninformer local(Backend be, NinformerSpec spec, long seed, int maxN) {
        return new Ninformer(be, spec, seed, maxN, b -> new LocalExchange(spec.moe().experts()));
    }

    @Override
    public StepStats forward(Batch batch, int n, boolean train, long seed, long step, long firstExample,
                             StepStats stats) {
        return forward(batch.inputs().rows(n), batch.targets().rows(n), batch.hostTargets(), train, seed, step,
                firstExample, stats);
    }

    /**
     * Forward pass and loss of a worker holding images [firstExample, firstExample + n) of a global
     * batch.
     *
     * @param x inputs[n, c·S·S]; @param y labels[n] (int); @param hostLabels the same on the host
     */
    public StepStats forward(Tensor x, Tensor y, int[] hostLabels, boolean train, long seed, long step,
                             long firstExample, StepStats stats) {
        ModelSpec s = spec.moe();
        int n = x.dim(0);
        if (n < 1 || n > maxN || x.rowSize() != s.inputs()) {
            throw new IllegalArgumentException("batch " + x + " does not fit the model: need 1.." + maxN
                    + " rows of " + s.inputs() + " features");
        }
        long t0 = System.nanoTime();
        long streamBase = step * STREAMS_PER_STEP;
        Tensor in = x;
        inputDropout = 0;
        if (train && s.dropoutInput() > 0) {
            in = inputDropped.rows(n);
            be.dropoutForward(in, x, (float) s.dropoutInput(), seed, streamBase, firstExample * s.inputs());
            inputDropout = (float) s.dropoutInput();
            inputDropoutSeed = seed;
            inputDropoutStream = streamBase;
            inputDropoutFirst = firstExample * s.inputs();
        }
        int rows = n * p;
        Tensor xp = patches.rows(rows);
        be.patchesForward(xp, in, spec.channels(), spec.side(), spec.patch());
        Tensor hcur = embed.forward(xp);
        timers.add(PhaseTimers.Phase.EMBED, t0, System.nanoTime());
        int capacity = train ? s.capacity(rows) : 0;
        float rate = train ? (float) current(Hyper.DROPOUT_BLOCK) : 0f;
        Tensor rates = train && perturbation != null ? perturbation.perExample(Hyper.DROPOUT_BLOCK) : null;
        stats.loadBalanceLoss = 0;
        stats.zLoss = 0;
        stats.droppedCopies = 0;
        long firstRow = firstExample * p;
        int layer = 0;
        for (int b = 0; b < blocks.length; b++) {
            long tBlock = System.nanoTime();
            hcur = blocks[b].forward(hcur, rate, rates, capacity, train, step, seed, streamBase + 1 + 3L * b,
                    firstRow);
            blockOutputs[b] = hcur;
            blockNanos[b] += System.nanoTime() - tBlock;
            if (blocks[b].moe != null) {
                blocks[b].moe.addStats(stats, layer++, train);
            }
        }
        long tHead = System.nanoTime();
        Tensor pool = pooled.rows(n);
        be.meanGroupsForward(pool, finalNorm.forward(hcur), n);
        Tensor logits = head.forward(pool);
        loss.forward(logits, y, hostLabels, stats);
        timers.add(PhaseTimers.Phase.HEAD, tHead, System.nanoTime());
        stats.tokens = n;
        stats.routedRows = rows;
        return stats;
    }

    /**
     * The logits of {@code x} [n, inputs] in evaluation (no dropout, router jitter or capacity
     * limit): what the forward of the model's export computes.
     *
     * @return logits[n, C], valid until the next forward
     */
    public Tensor logits(Tensor x) {
        int n = x.dim(0);
        if (n < 1 || n > maxN || x.rowSize() != spec.moe().inputs()) {
            throw new IllegalArgumentException("batch " + x + " does not fit the model: need 1.." + maxN
                    + " rows of " + spec.moe().inputs() + " features");
        }
        Tensor xp = patches.rows(n * p);
        be.patchesForward(xp, x, spec.channels(), spec.side(), spec.patch());
        Tensor hcur = embed.forward(xp);
        for (NinBlock block : blocks) {
            hcur = block.forward(hcur, 0f, 0, false, Long.MAX_VALUE, 0, 0, 0);
        }
        Tensor pool = pooled.rows(n);
        be.meanGroupsForward(pool, finalNorm.forward(hcur), n);
        return head.forward(pool);
    }

    @Override
    public void onBlockBackward(java.util.function.IntConsumer done) {
        this.blockDone = done;
    }

    @Override
    public void backward(int globalExamples) {
        backward(globalExamples, false);
    }

    @Override
    public Tensor backwardToInput(int globalExamples) {
        Tensor dPatches = backward(globalExamples, true);
        int n = loss.rows();
        if (dInput == null) {
            dInput = be.allocate("dInput", DType.FLOAT32, maxN, spec.moe().inputs());
        }
        Tensor dx = dInput.rows(n);
        be.patchesBackward(dx, dPatches, spec.channels(), spec.side(), spec.patch());
        if (inputDropout > 0) {
            Tensor dIn = inputDropped.rows(n);
            be.dropoutBackward(dIn, dx, inputDropout, inputDropoutSeed, inputDropoutStream, inputDropoutFirst);
            return dIn;
        }
        return dx;
    }

    @Override
    public ClassificationLoss loss() {
        return loss;
    }

    @Override
    public Tensor routedExperts(int layer) {
        return moeLayers.get(layer).copies();
    }

    /** The backward; with {@code needDx} the embedding's input gradient, [n·P, c·p²]. */
    private Tensor backward(int globalExamples, boolean needDx) {
        long t0 = System.nanoTime();
        long named = timers.total();
        int n = loss.rows();
        Tensor dPool = head.backward(loss.backward(globalExamples), true);
        Tensor dN = dNormed.rows(n * p);
        be.meanGroupsBackward(dN, dPool, n);
        Tensor d = finalNorm.backward(dN);
        long tBlocks = System.nanoTime();
        timers.add(PhaseTimers.Phase.HEAD, t0, tBlocks);
        for (int b = blocks.length - 1; b >= 0; b--) {
            d = blocks[b].backward(d);
            blockDone.accept(b);
        }
        long tEmbed = System.nanoTime();
        Tensor dx = embed.backward(d, needDx);
        long end = System.nanoTime();
        timers.add(PhaseTimers.Phase.EMBED, tEmbed, end);
        timers.add(PhaseTimers.Phase.BACKWARD, end - t0 - (timers.total() - named));
        return dx;
    }

    @Override
    public void afterStep() {
        for (MoeLayer m : moeLayers) {
            m.afterStep();
        }
    }

    /**
     * Block {@code b}'s output in the last forward, [n·P, D] (what early-exit heads read), valid
     * until the next forward.
     */
    public Tensor blockOutput(int b) {
        return blockOutputs[b];
    }

    /**
     * Each block's forward time in ns, summed over every forward so far (on a GPU, the time to
     * launch it unless the backend syncs every kernel).
     */
    public long[] blockNanos() {
        return blockNanos.clone();
    }

    public NinformerSpec ninformerSpec() {
        return spec;
    }

    @Override
    public ModelSpec spec() {
        return spec.moe();
    }

    @Override
    public Objective objective() {
        return Objective.ACCURACY;
    }

    @Override
    public String describe() {
        ModelSpec s = spec.moe();
        return String.format(Locale.ROOT, "NiNformer: %d×%d image(s) of %d channel(s) in %d patches of %d×%d, %d "
                + "classes, D=%d L=%d token hidden %d, channel hidden %d; FFN: %s", spec.side(), spec.side(),
                spec.channels(), p, spec.patch(), spec.patch(), s.classes(), s.dim(), s.blocks(), spec.tokenHidden(),
                spec.channelHidden(), moeLayers.isEmpty() ? "dense, hidden " + spec.denseHidden()
                        : String.format(Locale.ROOT, "MoE in %d of %d blocks, E=%d top-%d F=%d %s (dense hidden %d)",
                        moeLayers.size(), s.blocks(), s.experts(), s.topK(), s.expertHidden(),
                        s.activation().name().toLowerCase(Locale.ROOT), spec.denseHidden()));
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
        return maxN;
    }

    @Override
    public int tokensPerExample() {
        return 1;
    }

    @Override
    public int routedRowsPerExample() {
        return p;
    }

    @Override
    public int moeLayers() {
        return moeLayers.size();
    }

    /** λ of {@code h}: the tuner's current value when a Self-Tuning Network tunes it, else the spec's. */
    private double current(Hyper h) {
        return perturbation == null ? spec.moe().fixed(h) : perturbation.current(h, spec.moe().fixed(h));
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
