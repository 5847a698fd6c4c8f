package io.roundhouse.worker.model;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Tensor;

/**
 * The Self-Tuning Network's input to one forward pass: each example's centred perturbation
 * {@code Δ[n, h] = λ̃ − λ} (unconstrained units) that the layers' responses see, and, for a weight
 * step, each example's perturbed hyperparameter values {@code λ̃} that the regularisers use. Backward
 * accumulates {@code dL/dΔ} (the hypergradient's per-example terms) in {@link #dDelta()}.
 *
 * <p>Off (evaluation) the responses are skipped and the model is the plain network at λ.
 */
public final class Perturbation {
    private final Backend be;
    private final StnSpec spec;
    private final Tensor delta;     // [maxN, h]
    private final Tensor dDelta;    // [maxN, h]
    private final Tensor[] values;  // per tuned hyperparameter: [maxN]
    private final double[] current;  // λ, per tuned hyperparameter
    private boolean active;
    private boolean perExample;     // values[] hold this pass's per-example values (a weight step)
    private int n;

    public Perturbation(Backend be, StnSpec spec, int maxN) {
        this.be = be;
        this.spec = spec;
        int h = spec.tuned().size();
        this.delta = be.allocate("stn.delta", DType.FLOAT32, maxN, h);
        this.dDelta = be.allocate("stn.dDelta", DType.FLOAT32, maxN, h);
        this.values = new Tensor[h];
        for (int j = 0; j < h; j++) {
            values[j] = be.allocate("stn.values." + spec.tuned().get(j).id(), DType.FLOAT32, maxN);
        }
        this.current = new double[h];
    }

    /**
     * A pass over n examples with perturbations {@code delta[n·h]} (row-major) and, for a weight
     * step, the examples' hyperparameter values {@code values[j][n]} (null in a hyper step: no
     * regulariser acts in evaluation mode). Clears {@link #dDelta()}.
     */
    public void set(int n, float[] deltaHost, float[][] valuesHost) {
        this.n = n;
        be.write(delta.rows(n), deltaHost);
        be.fill(dDelta, 0f);
        this.perExample = valuesHost != null;
        if (perExample) {
            for (int j = 0; j < values.length; j++) {
                be.write(values[j].rows(n), valuesHost[j]);
            }
        }
        this.active = true;
    }

    /** Evaluation: no responses, the plain network at λ. */
    public void off() {
        this.active = false;
        this.perExample = false;
    }

    /** The unperturbed values λ (what evaluation and the reported losses use). */
    public void setCurrent(double[] lambda) {
        System.arraycopy(lambda, 0, current, 0, current.length);
    }

    public boolean active() {
        return active;
    }

    public StnSpec spec() {
        return spec;
    }

    /** Δ of the current pass, [n, h]. */
    public Tensor delta() {
        return delta.rows(n);
    }

    /** dL/dΔ of the current pass, [n, h]. */
    public Tensor dDelta() {
        return dDelta.rows(n);
    }

    /** This weight step's per-example values of {@code h}, [n], or null when not tuned or not a weight step. */
    public Tensor perExample(Hyper h) {
        int j = spec.column(h);
        return j < 0 || !perExample ? null : values[j].rows(n);
    }

    /** λ of {@code h} when tuned, else {@code fixed}. */
    public double current(Hyper h, double fixed) {
        int j = spec.column(h);
        return j < 0 ? fixed : current[j];
    }
}
