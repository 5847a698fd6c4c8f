package io.roundhouse.worker.train;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.worker.data.BatchSource;
import io.roundhouse.worker.data.FashionMnist;
import io.roundhouse.worker.model.Batch;
import io.roundhouse.worker.model.ImageModel;
import io.roundhouse.worker.model.Param;
import io.roundhouse.worker.model.StepStats;
import io.roundhouse.worker.parallel.DenseGradientSync;
import io.roundhouse.worker.robust.AdversarialSpec;
import io.roundhouse.worker.robust.Pgd;
import java.util.function.Predicate;

/**
 * Adversarial training's part of a step (TRADES; AdvMoE's alternation): the training batch becomes
 * its clean examples followed by their PGD copies (TRADES's KL attack), and the loss
 * {@code CE(f(x), y) + β·KL(f(x) ‖ f(x'))}. AdvMoE then freezes the routers in that step and
 * takes a second one for the routers alone, on fresh adversarial examples of the updated model.
 * The model is built for twice the shard ({@link #rowsFor}).
 */
final class AdversarialStep {
    /** Keys the random starts of the router step apart from the first attack's. */
    private static final long FIRST = 1;
    private static final long ROUTER = 2;
    private static final Predicate<Param> ROUTERS = p -> p.name().contains(".router.");
    private static final Predicate<Param> NOT_ROUTERS = ROUTERS.negate();

    private final AdversarialSpec spec;
    private final ImageModel model;
    private final Backend be;
    private final Pgd pgd;
    private final Tensor pairs;       // [2·maxShard, inputs]: the clean rows, then their adversarial copies
    private final Tensor pairLabels;  // [2·maxShard] int
    private final int[] hostLabels;
    private final Tensor adversarial; // [maxShard, inputs], the attack's output
    private final StepStats scratch;
    private final float[] syncScratch;

    AdversarialStep(AdversarialSpec spec, ImageModel model, int maxShard, int syncExtra) {
        this.spec = spec;
        this.model = model;
        this.be = model.backend();
        int inputs = model.spec().inputs();
        this.pgd = new Pgd(model, maxShard, FashionMnist.MEAN, FashionMnist.STD);
        this.pairs = be.allocate("adv.pairs", DType.FLOAT32, 2 * maxShard, inputs);
        this.pairLabels = be.allocate("adv.pairLabels", DType.INT32, 2 * maxShard);
        this.hostLabels = new int[2 * maxShard];
        this.adversarial = be.allocate("adv.examples", DType.FLOAT32, maxShard, inputs);
        this.scratch = new StepStats(model.moeLayers(), model.spec().experts());
        this.syncScratch = new float[syncExtra];
        if (spec.mode() == AdversarialSpec.Mode.ADVMOE && model.params().trainable().stream().noneMatch(ROUTERS)) {
            throw new io.roundhouse.worker.config.ConfigException("adv.training = advmoe alternates the routers and "
                    + "the rest, but this model has no router (no MoE layer, or model.experts = 1); use "
                    + "adv.training=trades");
        }
    }

    /** The examples a model trained adversarially takes per forward: the clean shard and its copies. */
    static int rowsFor(int shard) {
        return 2 * shard;
    }

    /** One line for the run's header. */
    String describe() {
        return spec.describe();
    }

    boolean alternates() {
        return spec.mode() == AdversarialSpec.Mode.ADVMOE;
    }

    /**
     * The step's training batch: the shard's {@code n} clean examples, then their adversarial
     * copies; the model's loss is set to TRADES for the forward that follows (see {@link #done}).
     */
    Batch pairs(BatchSource batch, int n, int globalExamples, long seed, long step, long firstExample, long salt) {
        pgd.attack(batch, n, spec.attack(), Pgd.Objective.KL_TO_CLEAN, globalExamples, seed, step, salt, firstExample,
                adversarial);
        be.copy(pairs.rows(n), batch.inputs().rows(n));
        be.copy(pairs.rows(n, n), adversarial.rows(n));
        int[] labels = batch.hostTargets();
        System.arraycopy(labels, 0, hostLabels, 0, n);
        System.arraycopy(labels, 0, hostLabels, n, n);
        be.write(pairLabels.rows(2 * n), hostLabels);  // copies the view's 2n
        model.loss().trades(spec.beta());
        return new Batch.Of(pairs.rows(2 * n), pairLabels.rows(2 * n), hostLabels);
    }

    /** The first attack's salt. */
    static long firstSalt() {
        return FIRST;
    }

    /**
     * After the TRADES forward and backward: the loss back to cross-entropy, the statistics
     * counted in clean examples, and with AdvMoE the routers' gradients dropped (frozen this step).
     */
    void done(StepStats stats, int n) {
        model.loss().crossEntropy();
        stats.tokens = n;
        if (alternates()) {
            for (Param p : model.params().trainable()) {
                if (ROUTERS.test(p)) {
                    be.fill(p.grad(), 0f);
                }
            }
        }
    }

    /** The parameters the first optimizer step moves: all, or with AdvMoE all but the routers. */
    Predicate<Param> firstStepMoves() {
        return alternates() ? NOT_ROUTERS : p -> true;
    }

    /**
     * AdvMoE's second step: fresh adversarial examples of the updated model, the TRADES loss, and
     * an optimizer step of the routers alone (the same optimizer step count, the routers' gradient
     * norm for clipping).
     */
    void routerStep(BatchSource batch, int n, int globalExamples, long seed, long step, long firstExample,
                    AdamW opt, DenseGradientSync sync, double rate) {
        Batch b = pairs(batch, n, globalExamples, seed, step, firstExample, ROUTER);
        model.params().zeroGrads();
        model.forward(b, 2 * n, true, seed, step, firstExample, scratch);
        model.backward(globalExamples);
        model.loss().crossEntropy();
        for (Param p : model.params().trainable()) {
            if (!ROUTERS.test(p)) {
                be.fill(p.grad(), 0f);
            }
        }
        java.util.Arrays.fill(syncScratch, 0f);
        double norm = sync != null ? sync.allReduce(syncScratch) : opt.gradNorm();
        opt.step(rate, norm, ROUTERS, false);
    }
}
