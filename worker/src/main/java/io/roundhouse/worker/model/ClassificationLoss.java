package io.roundhouse.worker.model;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Tensor;

/**
 * The loss of the image classifiers ({@link MoeClassifier}, {@link Ninformer}): softmax
 * cross-entropy of logits[n, C] against the labels, the batch's mean loss and top-1 correct
 * predictions into {@link StepStats}, and the logits' gradient for the backward. Buffers for at most
 * {@code maxN} examples, allocated once.
 *
 * <p>Adversarial training and attacks switch it to one of two other objectives (computed on the
 * host from the logits, which are [n, C] and small):
 * <ul>
 * <li>{@link #klTo}: {@code KL(t ‖ softmax(z))} against fixed target distributions t (TRADES's
 * attack, which moves x' away from the clean prediction);
 * <li>{@link #trades}: the batch's first half clean, its second half their adversarial copies:
 * {@code CE(z, y) + β·KL(softmax(z) ‖ softmax(z'))} per pair, the gradient flowing into both.
 * </ul>
 * The statistics stay the clean rows' cross-entropy and accuracy.
 */
public final class ClassificationLoss {
    /** What the next forwards compute. */
    public enum Mode { CROSS_ENTROPY, KL_TO_TARGET, TRADES }

    private final Backend be;
    private final int classes;
    private final Tensor losses;   // [maxN]
    private final Tensor probs;    // [maxN, C]
    private final Tensor dLogits;  // [maxN, C]
    private final float[] hostLosses;
    private final float[] hostProbs;
    private final float[] hostLogits;
    private final double[] logProbs;  // [maxN, C], the adversarial objectives'
    private final float[] hostGrad;
    private Tensor labels;
    private int[] hostLabels;  // the last forward's labels on the host
    private int n;
    private Mode mode = Mode.CROSS_ENTROPY;
    private float[] target;   // KL_TO_TARGET: [n, C]
    private double beta;      // TRADES

    ClassificationLoss(Backend be, int maxN, int classes) {
        this.be = be;
        this.classes = classes;
        this.losses = be.allocate("losses", DType.FLOAT32, maxN);
        this.probs = be.allocate("probs", DType.FLOAT32, maxN, classes);
        this.dLogits = be.allocate("dLogits", DType.FLOAT32, maxN, classes);
        this.hostLosses = new float[maxN];
        this.hostProbs = new float[maxN * classes];
        this.hostLogits = new float[maxN * classes];
        this.logProbs = new double[maxN * classes];
        this.hostGrad = new float[maxN * classes];
    }

    /** The next forwards compute the softmax cross-entropy (the default). */
    public void crossEntropy() {
        mode = Mode.CROSS_ENTROPY;
        target = null;
    }

    /** The next forwards compute {@code KL(t_r ‖ softmax(z_r))} per row, {@code targets} [n, C] (kept, not copied). */
    public void klTo(float[] targets) {
        mode = Mode.KL_TO_TARGET;
        target = targets;
    }

    /**
     * The next forwards take an even number of rows, the first half clean and the second their
     * adversarial copies in the same order, with the labels repeated, and compute TRADES's
     * {@code CE(z, y) + β·KL(softmax(z) ‖ softmax(z'))}.
     */
    public void trades(double beta) {
        mode = Mode.TRADES;
        target = null;
        this.beta = beta;
    }

    public Mode mode() {
        return mode;
    }

    /**
     * The loss of logits[n, C] against labels[n] (int; {@code hostLabels} the same on the host):
     * sets the stats' examples, mean cross-entropy and correct predictions (TRADES: of the clean half).
     */
    void forward(Tensor logits, Tensor labels, int[] hostLabels, StepStats stats) {
        int n = labels.dim(0);
        this.labels = labels;
        this.hostLabels = hostLabels;
        this.n = n;
        be.crossEntropyForward(losses.rows(n), probs.rows(n), logits, labels);
        be.read(losses.rows(n), hostLosses);
        be.read(probs.rows(n), hostProbs);
        if (mode != Mode.CROSS_ENTROPY) {
            if (mode == Mode.TRADES && n % 2 != 0) {
                throw new IllegalStateException("TRADES takes clean and adversarial rows in pairs, not " + n + " rows");
            }
            be.read(logits, hostLogits);
            logSoftmax(n);
        }
        int counted = mode == Mode.TRADES ? n / 2 : n;
        double sum = 0;
        int correct = 0;
        for (int r = 0; r < counted; r++) {
            sum += hostLosses[r];
            correct += argmax(hostProbs, r) == hostLabels[r] ? 1 : 0;
        }
        stats.examples = counted;
        stats.crossEntropy = sum / counted;
        stats.correct = correct;
    }

    /** Row r's most likely class in the last forward. */
    int argmax(float[] p, int r) {
        int best = 0;
        for (int j = 1; j < classes; j++) {
            if (p[r * classes + j] > p[r * classes + best]) {
                best = j;
            }
        }
        return best;
    }

    private void logSoftmax(int n) {
        for (int r = 0; r < n; r++) {
            int o = r * classes;
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < classes; j++) {
                max = Math.max(max, hostLogits[o + j]);
            }
            double sum = 0;
            for (int j = 0; j < classes; j++) {
                sum += Math.exp(hostLogits[o + j] - max);
            }
            double lse = max + Math.log(sum);
            for (int j = 0; j < classes; j++) {
                logProbs[o + j] = hostLogits[o + j] - lse;
            }
        }
    }

    /** The last forward's class probabilities on the host, [n, C] (a buffer the next forward rewrites). */
    public float[] hostProbs() {
        return hostProbs;
    }

    /** Rows of the last forward (TRADES: clean and adversarial). */
    int rows() {
        return n;
    }

    /** Examples of the last forward (TRADES: the clean ones). */
    int examples() {
        return mode == Mode.TRADES ? n / 2 : n;
    }

    /**
     * The objective of the last forward in its {@link Mode}, summed over its rows (TRADES: over its
     * pairs); for the gradient checks.
     */
    public double objectiveSum() {
        double sum = 0;
        switch (mode) {
            case CROSS_ENTROPY -> {
                for (int r = 0; r < n; r++) {
                    sum += hostLosses[r];
                }
            }
            case KL_TO_TARGET -> {
                for (int r = 0; r < n; r++) {
                    sum += kl(target, r, r);
                }
            }
            case TRADES -> {
                int h = n / 2;
                for (int r = 0; r < h; r++) {
                    sum += -logProbs[r * classes + hostLabels[r]] + beta * klRows(r, r + h);
                }
            }
        }
        return sum;
    }

    /** KL(t_tr ‖ p_r) with t a host [., C] array of probabilities. */
    private double kl(float[] t, int tr, int r) {
        double s = 0;
        for (int j = 0; j < classes; j++) {
            double tj = t[tr * classes + j];
            if (tj > 0) {
                s += tj * (Math.log(tj) - logProbs[r * classes + j]);
            }
        }
        return s;
    }

    /** KL(p_a ‖ p_b) between two rows of the last forward. */
    private double klRows(int a, int b) {
        double s = 0;
        for (int j = 0; j < classes; j++) {
            double la = logProbs[a * classes + j];
            s += Math.exp(la) * (la - logProbs[b * classes + j]);
        }
        return s;
    }

    /**
     * dLogits[n, C] of the last forward's loss as a share of a global batch's mean over
     * {@code globalExamples} (TRADES: clean examples).
     */
    Tensor backward(int globalExamples) {
        Tensor d = dLogits.rows(n);
        double scale = 1.0 / globalExamples;
        switch (mode) {
            case CROSS_ENTROPY -> be.crossEntropyBackward(d, probs.rows(n), labels, (float) scale);
            case KL_TO_TARGET -> {
                // d KL(t ‖ softmax z) / dz = softmax z − t
                for (int r = 0; r < n; r++) {
                    for (int j = 0; j < classes; j++) {
                        int i = r * classes + j;
                        hostGrad[i] = (float) (scale * (Math.exp(logProbs[i]) - target[i]));
                    }
                }
                be.write(d, hostGrad);
            }
            case TRADES -> {
                int h = n / 2;
                for (int r = 0; r < h; r++) {
                    int y = hostLabels[r];
                    double klr = klRows(r, r + h);
                    for (int j = 0; j < classes; j++) {
                        int c = r * classes + j;
                        int a = (r + h) * classes + j;
                        double p = Math.exp(logProbs[c]);
                        double pa = Math.exp(logProbs[a]);
                        // CE: p − onehot; β·KL(p ‖ p'): wrt z, p ⊙ (log p − log p' − KL); wrt z', p' − p
                        hostGrad[c] = (float) (scale * (p - (j == y ? 1 : 0)
                                + beta * p * (logProbs[c] - logProbs[a] - klr)));
                        hostGrad[a] = (float) (scale * beta * (pa - p));
                    }
                }
                be.write(d, hostGrad);
            }
        }
        return d;
    }
}
