package io.roundhouse.worker.train;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.worker.model.Param;
import io.roundhouse.worker.model.ParamStore;

/**
 * AdamW over a {@link ParamStore}'s trainable parameters (those there when it is created), with
 * optional global-norm gradient clipping.
 */
public final class AdamW {
    private final Backend be;
    private final float beta1;
    private final float beta2;
    private final float eps;
    private final float weightDecay;
    private final double clipNorm;
    private final java.util.List<Param> trainable;
    private final java.util.List<Tensor> grads;  // the trainable parameters' gradients, for the norm
    private int t;

    public AdamW(Backend be, ParamStore params, double beta1, double beta2, double eps, double weightDecay, double clipNorm) {
        this.be = be;
        this.beta1 = (float) beta1;
        this.beta2 = (float) beta2;
        this.eps = (float) eps;
        this.weightDecay = (float) weightDecay;
        this.clipNorm = clipNorm;
        this.trainable = params.trainable();
        this.grads = trainable.stream().map(Param::grad).toList();
    }

    /** The L2 norm of all gradients together (one wait on a GPU). */
    public double gradNorm() {
        return Math.sqrt(be.sumSquares(grads));
    }

    /**
     * Clips (if configured) and applies one step.
     *
     * @return the gradient norm before clipping
     */
    public double step(double lr) {
        return step(lr, gradNorm());
    }

    /**
     * Clips to the given global gradient norm (computed over every worker's parameters, see
     * {@code DenseGradientSync}) and applies one step.
     *
     * @return {@code norm}
     */
    public double step(double lr, double norm) {
        return step(lr, norm, p -> true, true);
    }

    /**
     * Clips to {@code norm} and steps only the parameters {@code which} accepts (AdvMoE's
     * alternation: the routers frozen, then the routers alone); {@code advance} counts a new
     * optimizer step (its bias correction), else this continues the last one with other parameters.
     *
     * @return {@code norm}
     */
    public double step(double lr, double norm, java.util.function.Predicate<Param> which, boolean advance) {
        if (!Double.isFinite(norm)) {
            throw new IllegalStateException("gradient norm is " + norm + " at optimizer step " + (t + 1)
                    + ": training diverged; lower train.lr or keep train.clipNorm > 0");
        }
        if (clipNorm > 0 && norm > clipNorm) {
            float scale = (float) (clipNorm / norm);
            for (Param p : trainable) {
                if (which.test(p)) {
                    be.scale(p.grad(), scale);
                }
            }
        }
        if (advance || t == 0) {
            t++;
        }
        for (int i = 0; i < trainable.size(); i++) {  // every step: no iterator
            Param p = trainable.get(i);
            if (!which.test(p)) {
                continue;
            }
            be.adamWStep(p.value(), p.grad(), p.m(), p.v(), (float) lr, beta1, beta2, eps,
                    p.decay() ? weightDecay : 0f, t);
        }
        return norm;
    }

    public int steps() {
        return t;
    }

    /** Continues from a checkpoint: the bias corrections use the step count it was written at. */
    public void setSteps(int steps) {
        this.t = steps;
    }
}
