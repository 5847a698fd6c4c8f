package io.roundhouse.worker.exit;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.worker.data.LabeledData;
import io.roundhouse.worker.model.Batch;
import io.roundhouse.worker.model.Ninformer;
import io.roundhouse.worker.model.StepStats;
import io.roundhouse.worker.robust.Pgd;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Consumer;

/**
 * JEI-DNN early exits on a trained, frozen NiNformer: each exit block's output, normalised per patch
 * (a layer norm without its affine, which a linear head absorbs) and averaged over the image's
 * patches, is computed once per image ({@link Features}); for each λ of a sweep, {@link ExitHeads}
 * trains the exits' heads and gates on the training set, and the test set is run through the
 * inference rule. Compute per example: FLOPs from the shapes ({@link NinformerFlops}: through the
 * exit's block, plus every exit head and gate evaluated on the way), and wall time composed from each
 * block's measured forward time on the test set (the embedding, final norm and head counted in
 * every exit's, so the wall fraction is conservative).
 */
public final class EarlyExit {
    /**
     * One λ's figures on the test set.
     *
     * @param exitShares the share of test images leaving at each exit (the last: the backbone's head)
     */
    public record Point(double lambda, double accuracy, double flopsFraction, double wallFraction,
                        double[] exitShares) {
    }

    /**
     * One λ on the validation and the test set.
     *
     * @param validation null without a validation split
     */
    public record Sweep(Point validation, Point test) {
    }

    /**
     * The sweep.
     *
     * @param fullAccuracy the backbone at full depth on the test set
     * @param fullValidationAccuracy the same on the validation split (NaN without one)
     * @param headAccuracy each intermediate exit's head alone (every test image leaving there), per λ's first
     * @param flopsPerImage the full-depth forward's FLOPs per image
     * @param exitBlocks    the blocks after which the exits sit
     */
    public record Result(double fullAccuracy, double fullValidationAccuracy, double flopsPerImage, double msPerImage,
                         int[] exitBlocks, List<Sweep> points, double[][] headAccuracy) {
    }

    /**
     * Every exit block's features and the backbone's predictions over a set.
     *
     * @param z        z[exit][image·D]
     * @param finalCe  the backbone's cross-entropy per image
     * @param correct  whether the backbone classifies each image correctly
     * @param blockNs  each block's forward time per image, ns
     * @param otherNs  the rest of the forward per image (embedding, final norm, pooling, head), ns
     */
    record Features(float[][] z, int[] labels, float[] finalCe, boolean[] correct, double[] blockNs, double otherNs) {
    }

    private EarlyExit() {
    }

    /** Runs the frozen model over {@code set} in evaluation mode, {@code batch} images per forward. */
    static Features features(Ninformer model, LabeledData set, int[] exitBlocks, int batch) {
        Backend be = model.backend();
        int inputs = model.spec().inputs();
        int d = model.spec().dim();
        int classes = model.spec().classes();
        int p = model.ninformerSpec().patches();
        int n = set.size();
        float[][] z = new float[exitBlocks.length][n * d];
        int[] labels = new int[n];
        float[] ce = new float[n];
        boolean[] correct = new boolean[n];
        Tensor x = be.allocate("exit.x", DType.FLOAT32, batch, inputs);
        Tensor y = be.allocate("exit.y", DType.INT32, batch);
        float[] hostX = new float[batch * inputs];
        int[] hostY = new int[batch];
        float[] rows = new float[batch * p * d];
        StepStats stats = new StepStats(model.moeLayers(), model.spec().experts());
        long[] before = model.blockNanos();
        long forward = 0;
        for (int from = 0; from < n; from += batch) {
            int m = Math.min(batch, n - from);
            for (int r = 0; r < m; r++) {
                set.features(from + r, hostX, r * inputs);
                hostY[r] = set.label(from + r);
                labels[from + r] = hostY[r];
            }
            be.write(x.rows(m), hostX, 0);
            be.write(y.rows(m), hostY);
            long t0 = System.nanoTime();
            model.forward(new Batch.Of(x.rows(m), y.rows(m), hostY), m, false, 0, 0, from, stats);
            forward += System.nanoTime() - t0;
            float[] probs = model.loss().hostProbs();
            for (int r = 0; r < m; r++) {
                ce[from + r] = (float) -Math.log(Math.max(probs[r * classes + hostY[r]], 1e-30f));
                int best = 0;
                for (int k = 1; k < classes; k++) {
                    if (probs[r * classes + k] > probs[r * classes + best]) {
                        best = k;
                    }
                }
                correct[from + r] = best == hostY[r];
            }
            for (int l = 0; l < exitBlocks.length; l++) {
                be.read(model.blockOutput(exitBlocks[l]), rows, 0);
                pool(rows, m, p, d, z[l], from * d);
            }
        }
        long[] after = model.blockNanos();
        double[] blockNs = new double[after.length];
        double blocks = 0;
        for (int b = 0; b < after.length; b++) {
            blockNs[b] = (double) (after[b] - before[b]) / n;
            blocks += after[b] - before[b];
        }
        return new Features(z, labels, ce, correct, blockNs, (forward - blocks) / n);
    }

    /**
     * rows[m·P, D] → out[off + i·D, …]: each row standardised (mean 0, variance 1, ε = 1e-5), averaged
     * over each image's P rows.
     */
    static void pool(float[] rows, int m, int p, int d, float[] out, int off) {
        double[] acc = new double[d];
        for (int i = 0; i < m; i++) {
            java.util.Arrays.fill(acc, 0);
            for (int r = 0; r < p; r++) {
                int o = (i * p + r) * d;
                double mean = 0;
                for (int j = 0; j < d; j++) {
                    mean += rows[o + j];
                }
                mean /= d;
                double var = 0;
                for (int j = 0; j < d; j++) {
                    double c = rows[o + j] - mean;
                    var += c * c;
                }
                double inv = 1 / Math.sqrt(var / d + 1e-5);
                for (int j = 0; j < d; j++) {
                    acc[j] += (rows[o + j] - mean) * inv;
                }
            }
            for (int j = 0; j < d; j++) {
                out[off + i * d + j] = (float) (acc[j] / p);
            }
        }
    }

    /**
     * The sweep: for each λ, exits trained on {@code train} ({@code epochs} passes in batches of
     * {@code batch}, heads and gates alternating every {@code alternate} batches, Adam at {@code lr}),
     * evaluated on {@code test}.
     *
     * @param log one line per λ
     */
    public static Result sweep(Ninformer model, LabeledData train, LabeledData validation, LabeledData test,
                               int[] exitBlocks,
                               double[] lambdas, int epochs, int alternate, int batch, double lr, long seed,
                               Consumer<String> log) {
        int evalBatch = Math.min(model.maxBatch(), 256);
        log.accept("features of " + train.size() + " training, " + (validation == null ? 0 : validation.size())
                + " validation and " + test.size() + " test images through the frozen model ...");
        Features tr = features(model, train, exitBlocks, evalBatch);
        Features va = validation == null ? null : features(model, validation, exitBlocks, evalBatch);
        Features te = features(model, test, exitBlocks, evalBatch);
        NinformerFlops flops = new NinformerFlops(model.ninformerSpec());
        int m = exitBlocks.length;
        double full = flops.full();
        double[] cost = new double[m + 1];       // FLOPs fraction of leaving at each exit
        double fullWall = te.otherNs();
        for (double t : te.blockNs()) {
            fullWall += t;
        }
        double[] wall = new double[m + 1];
        for (int l = 0; l < m; l++) {
            cost[l] = (flops.through(exitBlocks[l]) + (l + 1) * flops.exit()) / full;
            double w = te.otherNs();
            for (int j = 0; j <= exitBlocks[l]; j++) {
                w += te.blockNs()[j];
            }
            wall[l] = w / fullWall;
        }
        cost[m] = (full + m * flops.exit()) / full;
        wall[m] = 1;
        double fullAccuracy = accuracy(te);
        double fullValidation = va == null ? Double.NaN : accuracy(va);
        List<Sweep> points = new ArrayList<>();
        double[][] headAccuracy = new double[lambdas.length][];
        int n = tr.labels().length;
        for (int li = 0; li < lambdas.length; li++) {
            double lambda = lambdas[li];
            ExitHeads exits = new ExitHeads(m, model.spec().dim(), model.spec().classes(), seed);
            SplittableRandom rnd = new SplittableRandom(seed);
            int[] order = new int[n];
            int step = 0;
            for (int epoch = 0; epoch < epochs; epoch++) {
                for (int i = 0; i < n; i++) {
                    order[i] = i;
                }
                for (int i = n - 1; i > 0; i--) {
                    int j = rnd.nextInt(i + 1);
                    int t = order[i];
                    order[i] = order[j];
                    order[j] = t;
                }
                for (int from = 0; from + batch <= n; from += batch, step++) {
                    int[] b = java.util.Arrays.copyOfRange(order, from, from + batch);
                    if ((step / alternate) % 2 == 0) {
                        exits.headsStep(tr.z(), tr.labels(), b, lr);
                    } else {
                        exits.gatesStep(tr.z(), tr.labels(), tr.finalCe(), cost, lambda, b, lr);
                    }
                }
            }
            Point pt = evaluate(exits, te, cost, wall, lambda);
            Point pv = va == null ? null : evaluate(exits, va, cost, wall, lambda);
            headAccuracy[li] = headAccuracy(exits, te);
            points.add(new Sweep(pv, pt));
            log.accept(String.format(java.util.Locale.ROOT, "lambda %-6s %stest %.2f%% (full depth %.2f%%) at %.1f%% "
                    + "of the FLOPs, %.1f%% of the wall time; exits %s", trim(lambda), pv == null ? ""
                    : String.format(java.util.Locale.ROOT, "validation %.2f%% (full %.2f%%) at %.1f%% of the FLOPs; ",
                    100 * pv.accuracy(), 100 * fullValidation, 100 * pv.flopsFraction()), 100 * pt.accuracy(),
                    100 * fullAccuracy, 100 * pt.flopsFraction(), 100 * pt.wallFraction(), shares(pt.exitShares())));
        }
        return new Result(fullAccuracy, fullValidation, full, fullWall / 1e6, exitBlocks.clone(), points,
                headAccuracy);
    }

    private static double accuracy(Features f) {
        int correct = 0;
        for (boolean c : f.correct()) {
            correct += c ? 1 : 0;
        }
        return (double) correct / f.labels().length;
    }

    static Point evaluate(ExitHeads exits, Features te, double[] cost, double[] wall, double lambda) {
        int n = te.labels().length;
        int m = exits.exits;
        int[] predicted = new int[1];
        int correct = 0;
        double flops = 0;
        double time = 0;
        double[] shares = new double[m + 1];
        for (int e = 0; e < n; e++) {
            int l = exits.exitOf(te.z(), e, predicted);
            shares[l] += 1.0 / n;
            flops += cost[l];
            time += wall[l];
            correct += l == m ? (te.correct()[e] ? 1 : 0) : (predicted[0] == te.labels()[e] ? 1 : 0);
        }
        return new Point(lambda, (double) correct / n, flops / n, time / n, shares);
    }

    /** Each intermediate head's accuracy with every test image leaving there. */
    static double[] headAccuracy(ExitHeads exits, Features te) {
        int n = te.labels().length;
        double[] acc = new double[exits.exits];
        double[] p = new double[exits.classes];
        for (int l = 0; l < exits.exits; l++) {
            int correct = 0;
            for (int e = 0; e < n; e++) {
                exits.probs(l, te.z()[l], e * exits.dim, p);
                int best = 0;
                for (int k = 1; k < p.length; k++) {
                    if (p[k] > p[best]) {
                        best = k;
                    }
                }
                correct += best == te.labels()[e] ? 1 : 0;
            }
            acc[l] = (double) correct / n;
        }
        return acc;
    }

    private static String trim(double v) {
        String s = Double.toString(v);
        return s.endsWith(".0") ? s.substring(0, s.length() - 2) : s;
    }

    private static String shares(double[] s) {
        StringBuilder b = new StringBuilder();
        for (double v : s) {
            b.append(b.length() == 0 ? "" : " / ").append(String.format(java.util.Locale.ROOT, "%.0f%%", 100 * v));
        }
        return b.toString();
    }
}
