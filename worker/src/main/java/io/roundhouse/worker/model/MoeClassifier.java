package io.roundhouse.worker.model;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Tensor;
import java.util.List;
import java.util.function.IntFunction;

/**
 * The MoE-MLP classifier: input[N,inputs] → dropout → embed (linear to D) → L × MoE block →
 * norm → head (linear to C) → softmax cross-entropy. One image is one token.
 *
 * <p>All buffers are allocated here, for at most {@code maxN} examples per forward.
 */
public final class MoeClassifier implements ImageModel {
    /**
     * Dropout and jitter streams: stream = step·STREAMS_PER_STEP + site (0 input dropout, 1+b
     * block b's dropout, 1+L+b block b's router jitter).
     */
    static final long STREAMS_PER_STEP = 1024;

    /** What a Self-Tuning Network can tune in this model, and where it can add responses. */
    public static final List<Hyper> TUNABLE = List.of(Hyper.DROPOUT_INPUT, Hyper.DROPOUT_BLOCK, Hyper.ROUTER_JITTER,
            Hyper.LOAD_BALANCE, Hyper.Z_LOSS, Hyper.AUGMENT_SHIFT);
    public static final List<String> STN_LAYERS = List.of("embed", "router", "experts", "head");

    private final Backend be;
    private java.util.function.IntConsumer blockDone = b -> { };  // see onBlockBackward
    private final ModelSpec spec;
    private final ParamStore params;
    private final int maxN;
    public final LinearLayer embed;
    public final MoeBlock[] blocks;
    public final NormLayer finalNorm;
    public final LinearLayer head;
    private final Tensor inputDropped;  // [maxN, inputs]
    private Tensor dInput;              // [maxN, inputs], allocated at the first input gradient
    private float inputDropout;         // the last forward's input dropout rate (< 0: per example, the STN's)
    private long inputDropoutSeed;
    private long inputDropoutStream;
    private long inputDropoutFirst;
    private final ClassificationLoss loss;
    private final PhaseTimers timers = new PhaseTimers();
    private final Perturbation perturbation;  // null without a Self-Tuning Network
    private final Param hyperU;               // the STN's unconstrained λ (and its Adam moments)
    private final Param hyperRho;             // the STN's unconstrained σ (and its Adam moments)

    /**
     * @param exchanges the expert exchange of each block (a {@link LocalExchange} in one process)
     */
    public MoeClassifier(Backend be, ModelSpec spec, long seed, int maxN, IntFunction<ExpertExchange> exchanges) {
        if (spec.blocks() > (STREAMS_PER_STEP - 1) / 2) {
            throw new IllegalArgumentException("at most " + (STREAMS_PER_STEP - 1) / 2 + " blocks");
        }
        spec.stn().check("classifier", TUNABLE, STN_LAYERS);
        this.be = be;
        this.spec = spec;
        this.maxN = maxN;
        this.params = new ParamStore(be, seed);
        this.embed = new LinearLayer(be, params, "embed", spec.inputs(), spec.dim(), true, 1 / Math.sqrt(spec.inputs()),
                maxN, spec.precision());
        this.blocks = new MoeBlock[spec.blocks()];
        for (int b = 0; b < blocks.length; b++) {
            blocks[b] = new MoeBlock(be, params, "block" + b, spec, exchanges.apply(b), maxN);
            blocks[b].moe.setTimers(timers);
            if (spec.router().preGating() && b > 0) {
                blocks[b - 1].moe.preGate(blocks[b].moe);
            }
        }
        this.finalNorm = new NormLayer(be, params, "final.norm", spec.norm(), spec.dim(), maxN);
        this.head = new LinearLayer(be, params, "head", spec.dim(), spec.classes(), true, 1 / Math.sqrt(spec.dim()), maxN,
                spec.precision());
        this.inputDropped = be.allocate("input.dropped", DType.FLOAT32, maxN, spec.inputs());
        this.loss = new ClassificationLoss(be, maxN, spec.classes());
        // A Self-Tuning Network's parameters come after every plain one (and from their own
        // generator), so the plain parameters start exactly as without it.
        StnSpec stn = spec.stn();
        if (stn.enabled()) {
            int h = stn.tuned().size();
            this.perturbation = new Perturbation(be, stn, maxN);
            if (stn.has("embed")) {
                embed.attach(new StnResponse(be, params, "embed", spec.inputs(), spec.dim(), h,
                        1 / Math.sqrt(spec.inputs()), maxN), perturbation);
            }
            for (MoeBlock b : blocks) {
                if (stn.has("experts")) {
                    b.moe.attachExperts(params, perturbation);
                }
                if (stn.has("router")) {
                    b.moe.attach(new StnResponse(be, params, b.moe.name() + ".router", spec.dim(), spec.experts(), h,
                            0.1 / Math.sqrt(spec.dim()), maxN), perturbation);
                } else {
                    b.moe.attach(perturbation);
                }
            }
            if (stn.has("head")) {
                head.attach(new StnResponse(be, params, "head", spec.dim(), spec.classes(), h,
                        1 / Math.sqrt(spec.dim()), maxN), perturbation);
            }
            this.hyperU = params.state("stn.lambda", h);
            this.hyperRho = params.state("stn.sigma", h);
        } else {
            this.perturbation = null;
            this.hyperU = null;
            this.hyperRho = null;
        }
    }

    /** A single-process model: every block hosts all experts. */
    public static MoeClassifier local(Backend be, ModelSpec spec, long seed, int maxN) {
        return new MoeClassifier(be, spec, seed, maxN, b -> new LocalExchange(spec.experts()));
    }

    /**
     * Forward pass and loss.
     *
     * @param x          inputs[n, inputs]
     * @param y          labels[n] (int)
     * @param hostLabels the same labels on the host, for accuracy
     * @param train      training mode (dropout on, capacity limit on) or evaluation (neither)
     * @param seed       dropout seed
     * @param step       the optimizer step (selects the dropout masks)
     */
    public StepStats forward(Tensor x, Tensor y, int[] hostLabels, boolean train, long seed, long step, StepStats stats) {
        return forward(x, y, hostLabels, train, seed, step, 0, stats);
    }

    @Override
    public StepStats forward(Batch batch, int n, boolean train, long seed, long step, long firstExample,
                             StepStats stats) {
        return forward(batch.inputs().rows(n), batch.targets().rows(n), batch.hostTargets(), train, seed, step,
                firstExample, stats);
    }

    /**
     * Forward pass of a worker holding examples [firstExample, firstExample + n) of a global
     * batch: the dropout masks are those one worker with the whole batch would draw.
     */
    public StepStats forward(Tensor x, Tensor y, int[] hostLabels, boolean train, long seed, long step,
                             long firstExample, StepStats stats) {
        int n = x.dim(0);
        if (n < 1 || n > maxN || x.rowSize() != spec.inputs()) {
            throw new IllegalArgumentException("batch " + x + " does not fit the model: need 1.." + maxN
                    + " rows of " + spec.inputs() + " features");
        }
        long tEmbed = System.nanoTime();
        long streamBase = step * STREAMS_PER_STEP;
        Tensor in = x;
        Tensor inputRates = train && perturbation != null ? perturbation.perExample(Hyper.DROPOUT_INPUT) : null;
        float inputP = (float) current(Hyper.DROPOUT_INPUT);
        inputDropout = 0;
        if (inputRates != null) {
            in = inputDropped.rows(n);
            be.dropoutRowsForward(in, x, inputRates, seed, streamBase, firstExample * spec.inputs());
            inputDropout = -1;
        } else if (train && inputP > 0) {
            in = inputDropped.rows(n);
            be.dropoutForward(in, x, inputP, seed, streamBase, firstExample * spec.inputs());
            inputDropout = inputP;
            inputDropoutSeed = seed;
            inputDropoutStream = streamBase;
            inputDropoutFirst = firstExample * spec.inputs();
        }
        Tensor hcur = embed.forward(in);
        timers.add(PhaseTimers.Phase.EMBED, tEmbed, System.nanoTime());
        int capacity = train ? spec.capacity(n) : 0;
        float blockP = train ? (float) current(Hyper.DROPOUT_BLOCK) : 0f;
        Tensor blockRates = train && perturbation != null ? perturbation.perExample(Hyper.DROPOUT_BLOCK) : null;
        stats.loadBalanceLoss = 0;
        stats.zLoss = 0;
        stats.droppedCopies = 0;
        for (int b = 0; b < blocks.length; b++) {
            hcur = blocks[b].forward(hcur, blockP, blockRates, capacity, train, step, seed, streamBase + 1 + b,
                    streamBase + 1 + blocks.length + b, firstExample);
            blocks[b].moe.addStats(stats, b, train);
        }
        long tHead = System.nanoTime();
        Tensor logits = head.forward(finalNorm.forward(hcur));
        loss.forward(logits, y, hostLabels, stats);
        timers.add(PhaseTimers.Phase.HEAD, tHead, System.nanoTime());
        stats.tokens = n;
        stats.routedRows = n;
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
        if (n < 1 || n > maxN || x.rowSize() != spec.inputs()) {
            throw new IllegalArgumentException("batch " + x + " does not fit the model: need 1.." + maxN
                    + " rows of " + spec.inputs() + " features");
        }
        Tensor hcur = embed.forward(x);
        for (MoeBlock block : blocks) {
            hcur = block.forward(hcur, 0f, null, 0, false, Long.MAX_VALUE, 0, 0, 0, 0);
        }
        return head.forward(finalNorm.forward(hcur));
    }

    /**
     * Backward of the last forward: accumulates every parameter's gradient of
     * {@code mean cross-entropy + router losses}.
     */
    public void backward() {
        backward(loss.examples());
    }

    /**
     * Backward of the last forward when this worker holds part of a global batch of
     * {@code globalExamples}: the loss is the global mean, so summing the workers' gradients
     * gives the gradient one worker would compute on the whole batch.
     */
    @Override
    public void onBlockBackward(java.util.function.IntConsumer done) {
        this.blockDone = done;
    }

    public void backward(int globalExamples) {
        backward(globalExamples, false);
    }

    @Override
    public Tensor backwardToInput(int globalExamples) {
        if (inputDropout < 0) {
            throw new IllegalStateException("no input gradient through the Self-Tuning Network's per-example dropout");
        }
        Tensor d = backward(globalExamples, true);
        if (inputDropout > 0) {
            if (dInput == null) {
                dInput = be.allocate("dInput", DType.FLOAT32, maxN, spec.inputs());
            }
            Tensor dx = dInput.rows(d.dim(0));
            be.dropoutBackward(dx, d, inputDropout, inputDropoutSeed, inputDropoutStream, inputDropoutFirst);
            return dx;
        }
        return d;
    }

    @Override
    public ClassificationLoss loss() {
        return loss;
    }

    @Override
    public Tensor routedExperts(int layer) {
        return blocks[layer].moe.copies();
    }

    /** The backward; with {@code needDx} the embedding's input gradient (before any input dropout's). */
    private Tensor backward(int globalExamples, boolean needDx) {
        long t0 = System.nanoTime();
        long named = timers.total();
        Tensor d = finalNorm.backward(head.backward(loss.backward(globalExamples), true));
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
        // What the named phases (the head, the embedding, the MoE layers and their exchanges) did not take
        timers.add(PhaseTimers.Phase.BACKWARD, end - t0 - (timers.total() - named));
        return dx;
    }

    @Override
    public void afterStep() {
        for (MoeBlock b : blocks) {
            b.moe.afterStep();
        }
    }

    /** λ of {@code h}: the tuner's current value when a Self-Tuning Network tunes it, else the spec's. */
    private double current(Hyper h) {
        return perturbation == null ? spec.fixed(h) : perturbation.current(h, spec.fixed(h));
    }

    /** The Self-Tuning Network's perturbation, or null without one. */
    public Perturbation perturbation() {
        return perturbation;
    }

    /** The STN's unconstrained hyperparameters λ (value) with their Adam moments (m, v), or null. */
    public Param hyperLambda() {
        return hyperU;
    }

    /** The STN's unconstrained perturbation scales σ with their Adam moments, or null. */
    public Param hyperSigma() {
        return hyperRho;
    }

    /** Phase times since the last {@link PhaseTimers#reset()}; the trainer adds its own phases. */
    public PhaseTimers timers() {
        return timers;
    }

    public Backend backend() {
        return be;
    }

    public ParamStore params() {
        return params;
    }

    public ModelSpec spec() {
        return spec;
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
    public int moeLayers() {
        return blocks.length;
    }

    @Override
    public Objective objective() {
        return Objective.ACCURACY;
    }

    @Override
    public String describe() {
        return String.format(java.util.Locale.ROOT, "MoE-MLP classifier: %d inputs, %d classes, D=%d L=%d E=%d top-%d "
                + "F=%d %s %s", spec.inputs(), spec.classes(), spec.dim(), spec.blocks(), spec.experts(), spec.topK(),
                spec.expertHidden(), spec.activation().name().toLowerCase(java.util.Locale.ROOT),
                spec.norm().name().toLowerCase(java.util.Locale.ROOT));
    }
}
