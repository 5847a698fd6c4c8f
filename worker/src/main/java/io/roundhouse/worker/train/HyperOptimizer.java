package io.roundhouse.worker.train;

import io.roundhouse.worker.model.Hyper;

/**
 * The Self-Tuning Network's hyper-optimizer: Adam on the unconstrained hyperparameters u and on
 * ρ, the perturbation scales σ = softplus(ρ), minimising {@code L_val − τ·Σ_j log σ_j} (the
 * perturbation's entropy up to a constant keeps σ from collapsing). Values and moments are rounded
 * to float after every step, so the state survives a float checkpoint bit for bit.
 */
public final class HyperOptimizer {
    private static final double BETA1 = 0.9;
    private static final double BETA2 = 0.999;
    private static final double EPS = 1e-8;

    final float[] u;
    final float[] rho;
    final float[] mu;
    final float[] vu;
    final float[] mr;
    final float[] vr;
    private final double lr;
    private final double tau;
    private int t;

    /**
     * @param u     initial unconstrained hyperparameters
     * @param sigma initial perturbation scale (unconstrained units), the same for each
     * @param lr    Adam's learning rate
     * @param tau   weight of the entropy term
     */
    public HyperOptimizer(double[] u, double sigma, double lr, double tau) {
        int h = u.length;
        this.u = new float[h];
        this.rho = new float[h];
        this.mu = new float[h];
        this.vu = new float[h];
        this.mr = new float[h];
        this.vr = new float[h];
        for (int j = 0; j < h; j++) {
            this.u[j] = (float) u[j];
            this.rho[j] = (float) Math.log(Math.expm1(sigma));
        }
        this.lr = lr;
        this.tau = tau;
    }

    /**
     * One step from {@code gu[j] = ∂L_val/∂u_j} and {@code gs[j] = ∂L_val/∂σ_j} (the sums over the
     * validation examples of {@code dL/dΔ} and {@code dL/dΔ ⊙ ε}).
     */
    public void step(float[] gu, float[] gs) {
        t++;
        double c1 = 1 - Math.pow(BETA1, t);
        double c2 = 1 - Math.pow(BETA2, t);
        for (int j = 0; j < u.length; j++) {
            double sig = Hyper.sigmoid(rho[j]);
            double gRho = gs[j] * sig - tau * sig / Hyper.softplus(rho[j]);
            adam(u, mu, vu, j, gu[j], c1, c2);
            adam(rho, mr, vr, j, gRho, c1, c2);
        }
    }

    private void adam(float[] x, float[] m, float[] v, int j, double g, double c1, double c2) {
        m[j] = (float) (BETA1 * m[j] + (1 - BETA1) * g);
        v[j] = (float) (BETA2 * v[j] + (1 - BETA2) * g * g);
        x[j] = (float) (x[j] - lr * (m[j] / c1) / (Math.sqrt(v[j] / c2) + EPS));
    }

    /** The unconstrained value of hyperparameter j. */
    public double u(int j) {
        return u[j];
    }

    /** The perturbation scale σ_j. */
    public double sigma(int j) {
        return Hyper.softplus(rho[j]);
    }

    /** Steps taken (the version of the hyperparameters). */
    public int steps() {
        return t;
    }

    /** Continues from a checkpoint: the bias corrections use this step count. */
    public void setSteps(int steps) {
        this.t = steps;
    }
}
