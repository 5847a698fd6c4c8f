package io.roundhouse.worker.exit;

import java.util.Arrays;

/**
 * JEI-DNN's exits on a frozen backbone (PAPERS.md): m intermediate exits, each a linear head
 * {@code z_l·W_l + b_l} (z_l the exit's D features, C classes) and a gate
 * {@code g_l = σ(a_l·φ_l + c_l)} over the head's uncertainty features
 * {@code φ_l = (max probability, entropy, margin between the two largest)}; the backbone's own head
 * is exit m and always exits. Inference exits at the first l with {@code g_l ≥ 0.5}.
 *
 * <p>Training alternates between the heads (loss {@code Σ_l π_l·CE_l}, π the exit probabilities
 * {@code π_l = g_l·Π_{j<l}(1 − g_j)}, the gates frozen and π a constant) and the gates (target: the
 * exit {@code t = argmin_l CE_l + λ·cost_l}; binary cross-entropy of {@code g_l} against 0 for
 * l &lt; t and 1 at t, the heads and φ constants). Adam on both, in double, on the host: an exit is
 * D·C + C + 4 numbers.
 */
public final class ExitHeads {
    /** Gates start closed-ish so the heads' first phase weights the early exits lightly. */
    static final double GATE_BIAS = -1.0;

    final int exits;
    final int dim;
    final int classes;
    final double[][] w;     // [exit][D·C]
    final double[][] b;     // [exit][C]
    final double[][] a;     // [exit][3]
    final double[] c;       // [exit]
    private final Adam heads;
    private final Adam gates;

    /** @param seed draws the heads' initial weights (normal, std 1/√D) */
    public ExitHeads(int exits, int dim, int classes, long seed) {
        this.exits = exits;
        this.dim = dim;
        this.classes = classes;
        this.w = new double[exits][dim * classes];
        this.b = new double[exits][classes];
        this.a = new double[exits][3];
        this.c = new double[exits];
        java.util.SplittableRandom r = new java.util.SplittableRandom(seed);
        for (double[] wl : w) {
            for (int i = 0; i < wl.length; i++) {
                double u = 1 - r.nextDouble();
                wl[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r.nextDouble()) / Math.sqrt(dim);
            }
        }
        Arrays.fill(c, GATE_BIAS);
        this.heads = new Adam(exits * (dim * classes + classes));
        this.gates = new Adam(exits * 4);
    }

    /** Exit l's class probabilities of features z (D values at {@code off}) into p[C]; returns p. */
    double[] probs(int l, float[] z, int off, double[] p) {
        double max = Double.NEGATIVE_INFINITY;
        for (int k = 0; k < classes; k++) {
            double s = b[l][k];
            for (int j = 0; j < dim; j++) {
                s += z[off + j] * w[l][j * classes + k];
            }
            p[k] = s;
            max = Math.max(max, s);
        }
        double sum = 0;
        for (int k = 0; k < classes; k++) {
            p[k] = Math.exp(p[k] - max);
            sum += p[k];
        }
        for (int k = 0; k < classes; k++) {
            p[k] /= sum;
        }
        return p;
    }

    /** The uncertainty features of probabilities p into phi[3]: max, entropy, margin. */
    static double[] features(double[] p, double[] phi) {
        double first = 0;
        double second = 0;
        double entropy = 0;
        for (double v : p) {
            if (v > first) {
                second = first;
                first = v;
            } else if (v > second) {
                second = v;
            }
            entropy -= v > 0 ? v * Math.log(v) : 0;
        }
        phi[0] = first;
        phi[1] = entropy;
        phi[2] = first - second;
        return phi;
    }

    /** Gate l's exit probability for features phi. */
    double gate(int l, double[] phi) {
        double s = c[l];
        for (int i = 0; i < 3; i++) {
            s += a[l][i] * phi[i];
        }
        return 1 / (1 + Math.exp(-s));
    }

    /**
     * One heads step on a mini-batch: {@code Σ_l π_l·CE_l} averaged over the batch, π from the
     * current gates (constants; the final exit's CE is the backbone's, constant too).
     *
     * @param z     z[l][example·D], every exit's features of the whole set
     * @param y     labels
     * @param batch the examples of this step
     * @return the batch's mean loss before the step
     */
    double headsStep(float[][] z, int[] y, int[] batch, double lr) {
        double[] grad = new double[heads.size()];
        double loss = headsLoss(z, y, batch, grad);
        heads.step(grad, lr, this::headParam);
        return loss;
    }

    /** The heads' loss and its gradient (added to {@code grad}, laid out as {@link #headParam}). */
    double headsLoss(float[][] z, int[] y, int[] batch, double[] grad) {
        double[] p = new double[classes];
        double[] phi = new double[3];
        double loss = 0;
        double inv = 1.0 / batch.length;
        for (int e : batch) {
            double reach = 1;  // Π_{j<l} (1 − g_j)
            for (int l = 0; l < exits; l++) {
                int off = e * dim;
                probs(l, z[l], off, p);
                double g = gate(l, features(p, phi));
                double pi = reach * g;
                reach *= 1 - g;
                loss += pi * -Math.log(Math.max(p[y[e]], 1e-300)) * inv;
                if (grad != null) {
                    int base = l * (dim * classes + classes);
                    for (int k = 0; k < classes; k++) {
                        double dl = pi * inv * (p[k] - (k == y[e] ? 1 : 0));
                        for (int j = 0; j < dim; j++) {
                            grad[base + j * classes + k] += dl * z[l][off + j];
                        }
                        grad[base + dim * classes + k] += dl;
                    }
                }
            }
        }
        return loss;
    }

    /** Heads parameter i (the layout of {@link #headsLoss}'s gradient), read or written. */
    private double[] headParam(int i, int[] at) {
        int per = dim * classes + classes;
        int l = i / per;
        int r = i % per;
        if (r < dim * classes) {
            at[0] = r;
            return w[l];
        }
        at[0] = r - dim * classes;
        return b[l];
    }

    /**
     * One gates step: binary cross-entropy of each gate up to the example's target exit
     * ({@code argmin_l CE_l + λ·cost_l}, l ≤ m) against 0 before it and 1 at it, averaged over the batch.
     *
     * @param finalCe the backbone head's cross-entropy per example
     * @param cost    cost_l of exiting at l = 0..m, as a fraction of the full depth
     */
    double gatesStep(float[][] z, int[] y, float[] finalCe, double[] cost, double lambda, int[] batch, double lr) {
        double[] grad = new double[gates.size()];
        double loss = gatesLoss(z, y, finalCe, cost, lambda, batch, grad);
        gates.step(grad, lr, this::gateParam);
        return loss;
    }

    double gatesLoss(float[][] z, int[] y, float[] finalCe, double[] cost, double lambda, int[] batch, double[] grad) {
        double[] p = new double[classes];
        double[][] phi = new double[exits][3];
        double[] ce = new double[exits + 1];
        double loss = 0;
        double inv = 1.0 / batch.length;
        for (int e : batch) {
            for (int l = 0; l < exits; l++) {
                probs(l, z[l], e * dim, p);
                features(p, phi[l]);
                ce[l] = -Math.log(Math.max(p[y[e]], 1e-300));
            }
            ce[exits] = finalCe[e];
            int target = 0;
            for (int l = 1; l <= exits; l++) {
                if (ce[l] + lambda * cost[l] < ce[target] + lambda * cost[target]) {
                    target = l;
                }
            }
            for (int l = 0; l < Math.min(target + 1, exits); l++) {
                double g = gate(l, phi[l]);
                double t = l == target ? 1 : 0;
                loss -= inv * (t * Math.log(Math.max(g, 1e-300)) + (1 - t) * Math.log(Math.max(1 - g, 1e-300)));
                if (grad != null) {
                    double d = inv * (g - t);
                    for (int i = 0; i < 3; i++) {
                        grad[l * 4 + i] += d * phi[l][i];
                    }
                    grad[l * 4 + 3] += d;
                }
            }
        }
        return loss;
    }

    private double[] gateParam(int i, int[] at) {
        int l = i / 4;
        int r = i % 4;
        if (r < 3) {
            at[0] = r;
            return a[l];
        }
        at[0] = l;
        return c;
    }

    /**
     * The exit example e takes: the first intermediate exit whose gate is ≥ 0.5, else m (the
     * backbone's head); its prediction into {@code predicted[0]} (−1 at exit m: the backbone's).
     */
    int exitOf(float[][] z, int e, int[] predicted) {
        double[] p = new double[classes];
        double[] phi = new double[3];
        for (int l = 0; l < exits; l++) {
            probs(l, z[l], e * dim, p);
            if (gate(l, features(p, phi)) >= 0.5) {
                int best = 0;
                for (int k = 1; k < classes; k++) {
                    if (p[k] > p[best]) {
                        best = k;
                    }
                }
                predicted[0] = best;
                return l;
            }
        }
        predicted[0] = -1;
        return exits;
    }

    /** Adam over a flat parameter vector stored in the heads' arrays. */
    private static final class Adam {
        private final double[] m;
        private final double[] v;
        private int t;

        Adam(int size) {
            m = new double[size];
            v = new double[size];
        }

        int size() {
            return m.length;
        }

        void step(double[] grad, double lr, Param at) {
            t++;
            double c1 = 1 - Math.pow(0.9, t);
            double c2 = 1 - Math.pow(0.999, t);
            int[] idx = new int[1];
            for (int i = 0; i < grad.length; i++) {
                m[i] = 0.9 * m[i] + 0.1 * grad[i];
                v[i] = 0.999 * v[i] + 0.001 * grad[i] * grad[i];
                double[] arr = at.of(i, idx);
                arr[idx[0]] -= lr * (m[i] / c1) / (Math.sqrt(v[i] / c2) + 1e-8);
            }
        }
    }

    @FunctionalInterface
    private interface Param {
        double[] of(int i, int[] at);
    }
}
