package io.roundhouse.worker.robust;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.worker.model.Batch;
import io.roundhouse.worker.model.ClassificationLoss;
import io.roundhouse.worker.model.ImageModel;
import io.roundhouse.worker.model.StepStats;
import java.util.SplittableRandom;

/**
 * Projected gradient descent under an L∞ budget (Madry et al.), on any {@link ImageModel}: from x
 * (or a uniform random point of the ε-ball around it), {@code steps} times
 * {@code x' ← clip(x' + α·sign(∇_x' L), [x − ε, x + ε] ∩ [0, 1])}, the model in evaluation mode
 * (no dropout, router noise or capacity limit). L is the cross-entropy against the label (the
 * evaluation's attack, and AT's) or {@code KL(f(x) ‖ f(x'))} (TRADES's). ε, α and the box are in
 * pixel units; the model reads pixels normalised as {@code (p − mean)/std}, so the attack runs in
 * that space with ε/std and the box's image.
 *
 * <p>The step arithmetic runs on the host (an image batch is small); the forwards and backwards on
 * the model's backend. Every forward and backward is the model's, so with expert parallelism each
 * worker attacks its own examples and the MoE layers' exchanges run in step. A worker's random
 * start for example i of a global batch is drawn from (seed, step, i), so W workers draw what one
 * worker with the whole batch draws. The attack's backwards accumulate into the parameters'
 * gradients: zero them before the training backward that follows.
 */
public final class Pgd {
    /** What the attack ascends. */
    public enum Objective { CROSS_ENTROPY, KL_TO_CLEAN }

    /**
     * One attack's settings, in pixel units.
     *
     * @param epsilon     the L∞ radius
     * @param stepSize    α
     * @param steps       gradient steps
     * @param randomStart start from a uniform point of the ball (else from x; the KL objective then
     *                    starts from x + 0.001·N(0, 1), where its gradient is not zero, as TRADES does)
     */
    public record Attack(double epsilon, double stepSize, int steps, boolean randomStart) {
        public Attack {
            if (!(epsilon >= 0 && epsilon <= 1) || !(stepSize >= 0) || steps < 0) {
                throw new IllegalArgumentException("attack: epsilon in [0, 1], step size >= 0, steps >= 0; got "
                        + epsilon + ", " + stepSize + ", " + steps);
            }
        }
    }

    private final ImageModel model;
    private final Backend be;
    private final int inputs;
    private final float scale;  // normalised units per pixel unit (1/std)
    private final float lo;     // the normalised image of pixel 0
    private final float hi;     // ... of pixel 1
    private final float[] clean;
    private final float[] adv;
    private final float[] grad;
    private final float[] cleanProbs;
    private final StepStats scratch;

    /**
     * @param maxN  examples per attack at most
     * @param mean  the normalisation's mean, in pixel units
     * @param std   its standard deviation
     */
    public Pgd(ImageModel model, int maxN, double mean, double std) {
        this.model = model;
        this.be = model.backend();
        this.inputs = model.spec().inputs();
        this.scale = (float) (1 / std);
        this.lo = (float) (-mean / std);
        this.hi = (float) ((1 - mean) / std);
        this.clean = new float[maxN * inputs];
        this.adv = new float[maxN * inputs];
        this.grad = new float[maxN * inputs];
        this.cleanProbs = new float[maxN * model.spec().classes()];
        this.scratch = new StepStats(model.moeLayers(), model.spec().experts());
    }

    /**
     * Adversarial copies of the batch's first {@code n} examples into {@code out}[n, inputs]
     * (a tensor other than the batch's inputs).
     *
     * @param globalExamples the global batch these n are part of (scales the loss, not the signs)
     * @param seed           the run's seed; with {@code step} and {@code salt} it keys the random starts
     * @param firstExample   the global index of the batch's first example
     */
    public void attack(Batch batch, int n, Attack a, Objective objective, int globalExamples, long seed, long step,
                       long salt, long firstExample, Tensor out) {
        Tensor x = batch.inputs().rows(n);
        Tensor dst = out.rows(n);
        be.read(x, clean, 0);
        int size = n * inputs;
        float eps = (float) (a.epsilon() * scale);
        float alpha = (float) (a.stepSize() * scale);
        ClassificationLoss loss = model.loss();
        Batch.Of adversarial = new Batch.Of(dst, batch.targets().rows(n), batch.hostTargets());
        try {
            if (objective == Objective.KL_TO_CLEAN) {
                loss.crossEntropy();
                model.forward(batch, n, false, seed, step, firstExample, scratch);
                System.arraycopy(loss.hostProbs(), 0, cleanProbs, 0, n * model.spec().classes());
                loss.klTo(cleanProbs);
            } else {
                loss.crossEntropy();
            }
            start(n, a, objective, seed, step, salt, firstExample);
            for (int s = 0; s < a.steps(); s++) {
                be.write(dst, adv, 0);
                model.forward(adversarial, n, false, seed, step, firstExample, scratch);
                be.read(model.backwardToInput(globalExamples), grad, 0);
                for (int i = 0; i < size; i++) {
                    float g = grad[i];
                    float v = adv[i] + (g > 0 ? alpha : g < 0 ? -alpha : 0f);
                    float c = clean[i];
                    adv[i] = Math.min(hi, Math.max(lo, Math.min(c + eps, Math.max(c - eps, v))));
                }
            }
        } finally {
            loss.crossEntropy();
        }
        be.write(dst, adv, 0);
    }

    /** The starting points into {@link #adv}. */
    private void start(int n, Attack a, Objective objective, long seed, long step, long salt, long firstExample) {
        float eps = (float) (a.epsilon() * scale);
        boolean jitter = !a.randomStart() && objective == Objective.KL_TO_CLEAN;
        for (int r = 0; r < n; r++) {
            int o = r * inputs;
            if (!a.randomStart() && !jitter) {
                System.arraycopy(clean, o, adv, o, inputs);
                continue;
            }
            SplittableRandom rnd = new SplittableRandom(mix(seed, step, salt, firstExample + r));
            for (int j = 0; j < inputs; j++) {
                float c = clean[o + j];
                float d = jitter ? (float) (0.001 * scale * gaussian(rnd)) : (float) ((2 * rnd.nextDouble() - 1) * eps);
                adv[o + j] = Math.min(hi, Math.max(lo, Math.min(c + eps, Math.max(c - eps, c + d))));
            }
        }
    }

    private static double gaussian(SplittableRandom rnd) {
        double u = 1 - rnd.nextDouble();
        return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rnd.nextDouble());
    }

    private static long mix(long seed, long step, long salt, long example) {
        long h = seed * 0x9E3779B97F4A7C15L;
        h = (h ^ step) * 0xBF58476D1CE4E5B9L;
        h = (h ^ salt) * 0x94D049BB133111EBL;
        h = (h ^ example) * 0x9E3779B97F4A7C15L;
        return h ^ (h >>> 31);
    }
}
