package io.roundhouse.worker.robust;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.worker.data.FashionMnist;
import io.roundhouse.worker.data.LabeledData;
import io.roundhouse.worker.model.Batch;
import io.roundhouse.worker.model.ImageModel;
import io.roundhouse.worker.model.StepStats;
import java.util.Arrays;
import java.util.function.IntConsumer;

/**
 * Clean and robust accuracy of an image model on a labelled set: each batch once clean, then under
 * PGD with each of the given step counts (the cross-entropy attack, evaluation mode, the same ε and
 * step size), with the router robustness of each attack: the share of routed rows (images for the
 * classifier, patches for the NiNformer) of each MoE layer whose set of chosen experts the attack
 * changed.
 */
public final class RobustEvaluation {
    /** A salt per attack keeps the random starts of PGD-10 and PGD-20 apart. */
    private static final long SALT = 0x524F4255L;

    /**
     * One row of the report.
     *
     * @param steps         PGD steps (0: the clean row)
     * @param correct       examples classified correctly
     * @param routerChanged per MoE layer, the share of routed rows whose experts the attack changed
     *                      (empty for the clean row)
     */
    public record Row(int steps, int correct, int examples, double[] routerChanged) {
        public double accuracy() {
            return (double) correct / examples;
        }

        /** The mean over layers of {@link #routerChanged}, NaN without one. */
        public double routerChangedMean() {
            return Arrays.stream(routerChanged).average().orElse(Double.NaN);
        }
    }

    private RobustEvaluation() {
    }

    /**
     * @param examples   the set's first examples to evaluate
     * @param batch      examples per forward (at most the model's)
     * @param epsilon    L∞ radius in pixel units; {@code stepSize} likewise
     * @param stepCounts PGD steps of each attack, e.g. {10, 20}
     * @param progress   told the examples done after each batch
     * @return the clean row, then one per attack
     */
    public static Row[] run(ImageModel model, LabeledData set, int examples, int batch, double epsilon,
                            double stepSize, int[] stepCounts, boolean randomStart, long seed, IntConsumer progress) {
        Backend be = model.backend();
        int inputs = model.spec().inputs();
        if (set.features() != inputs) {
            throw new IllegalArgumentException(set.name() + " has " + set.features() + " features, the model reads "
                    + inputs);
        }
        Tensor x = be.allocate("eval.x", DType.FLOAT32, batch, inputs);
        Tensor y = be.allocate("eval.y", DType.INT32, batch);
        Tensor adv = be.allocate("eval.adv", DType.FLOAT32, batch, inputs);
        float[] hostX = new float[batch * inputs];
        int[] hostY = new int[batch];
        Pgd pgd = new Pgd(model, batch, FashionMnist.MEAN, FashionMnist.STD);
        StepStats stats = new StepStats(model.moeLayers(), model.spec().experts());
        int layers = model.moeLayers();
        int[][] clean = new int[layers][];
        int[][] attacked = new int[layers][];
        int[] correct = new int[stepCounts.length + 1];
        long[][] changed = new long[stepCounts.length][layers];
        long[] routed = new long[layers];
        for (int from = 0; from < examples; from += batch) {
            int n = Math.min(batch, examples - from);
            for (int r = 0; r < n; r++) {
                set.features(from + r, hostX, r * inputs);
                hostY[r] = set.label(from + r);
            }
            be.write(x.rows(n), hostX, 0);
            be.write(y.rows(n), hostY);
            Batch.Of cleanRows = new Batch.Of(x.rows(n), y.rows(n), hostY);
            model.loss().crossEntropy();
            model.forward(cleanRows, n, false, seed, 0, from, stats);
            correct[0] += stats.correct;
            for (int l = 0; l < layers; l++) {
                clean[l] = copies(be, model.routedExperts(l), clean[l]);
                routed[l] += model.routedExperts(l).dim(0);
            }
            for (int a = 0; a < stepCounts.length; a++) {
                pgd.attack(cleanRows, n, new Pgd.Attack(epsilon, stepSize, stepCounts[a], randomStart),
                        Pgd.Objective.CROSS_ENTROPY, n, seed, 0, SALT + stepCounts[a], from, adv);
                model.forward(new Batch.Of(adv.rows(n), y.rows(n), hostY), n, false, seed, 0, from, stats);
                correct[a + 1] += stats.correct;
                for (int l = 0; l < layers; l++) {
                    Tensor t = model.routedExperts(l);
                    attacked[l] = copies(be, t, attacked[l]);
                    changed[a][l] += changedRows(clean[l], attacked[l], t.dim(0), t.dim(1));
                }
            }
            progress.accept(from + n);
        }
        Row[] rows = new Row[stepCounts.length + 1];
        rows[0] = new Row(0, correct[0], examples, new double[0]);
        for (int a = 0; a < stepCounts.length; a++) {
            double[] share = new double[layers];
            for (int l = 0; l < layers; l++) {
                share[l] = (double) changed[a][l] / routed[l];
            }
            rows[a + 1] = new Row(stepCounts[a], correct[a + 1], examples, share);
        }
        return rows;
    }

    private static int[] copies(Backend be, Tensor table, int[] buffer) {
        int[] b = buffer == null || buffer.length < table.size() ? new int[table.size()] : buffer;
        be.read(table, b);
        return b;
    }

    /** Rows of two copy tables [rows, S] whose sets of experts (the −1 of empty slots aside) differ. */
    static long changedRows(int[] a, int[] b, int rows, int slots) {
        int[] sa = new int[slots];
        int[] sb = new int[slots];
        long changed = 0;
        for (int r = 0; r < rows; r++) {
            System.arraycopy(a, r * slots, sa, 0, slots);
            System.arraycopy(b, r * slots, sb, 0, slots);
            Arrays.sort(sa);
            Arrays.sort(sb);
            changed += Arrays.equals(sa, sb) ? 0 : 1;
        }
        return changed;
    }
}
