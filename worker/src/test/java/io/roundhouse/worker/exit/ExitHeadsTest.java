package io.roundhouse.worker.exit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.roundhouse.kernels.Activation;
import io.roundhouse.kernels.GateMode;
import io.roundhouse.kernels.Precision;
import io.roundhouse.worker.model.ModelSpec;
import io.roundhouse.worker.model.NinformerSpec;
import io.roundhouse.worker.model.NormKind;
import io.roundhouse.worker.model.StnSpec;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The exits' heads and gates: both phases' gradients against central differences (in double),
 * the exit probabilities and uncertainty features against plain loops, the inference rule, the
 * pooling, and the FLOPs count against a hand count.
 */
class ExitHeadsTest {
    private static final int D = 5;
    private static final int C = 4;
    private static final int EXITS = 3;
    private static final int N = 7;

    private static float[][] features(Random r) {
        float[][] z = new float[EXITS][N * D];
        for (float[] zl : z) {
            for (int i = 0; i < zl.length; i++) {
                zl[i] = (float) r.nextGaussian();
            }
        }
        return z;
    }

    @Test
    void headsGradientMatchesCentralDifferences() {
        Random r = new Random(1);
        ExitHeads h = new ExitHeads(EXITS, D, C, 3);
        for (int l = 0; l < EXITS; l++) {  // gates that are neither shut nor open
            for (int i = 0; i < 3; i++) {
                h.a[l][i] = r.nextGaussian();
            }
            h.c[l] = r.nextGaussian() * 0.5;
        }
        float[][] z = features(r);
        int[] y = new int[N];
        int[] batch = new int[N];
        for (int e = 0; e < N; e++) {
            y[e] = r.nextInt(C);
            batch[e] = e;
        }
        int per = D * C + C;
        double[] grad = new double[EXITS * per];
        h.headsLoss(z, y, batch, grad);
        // π is a constant of the heads' phase: freeze it by differentiating with the gates' values fixed.
        double[][] pi = exitProbabilities(h, z, batch);
        for (int trial = 0; trial < 30; trial++) {
            int i = r.nextInt(EXITS * per);
            int l = i / per;
            int k = i % per;
            double[] arr = k < D * C ? h.w[l] : h.b[l];
            int at = k < D * C ? k : k - D * C;
            double keep = arr[at];
            double eps = 1e-6;
            arr[at] = keep + eps;
            double plus = weightedCe(h, z, y, batch, pi);
            arr[at] = keep - eps;
            double minus = weightedCe(h, z, y, batch, pi);
            arr[at] = keep;
            double numeric = (plus - minus) / (2 * eps);
            assertEquals(numeric, grad[i], 1e-6 * Math.max(1, Math.abs(numeric)), "heads parameter " + i);
        }
    }

    /** π_l per example with plain loops: g_l · Π_{j<l}(1 − g_j). */
    private static double[][] exitProbabilities(ExitHeads h, float[][] z, int[] batch) {
        double[][] pi = new double[batch.length][EXITS];
        for (int i = 0; i < batch.length; i++) {
            double reach = 1;
            for (int l = 0; l < EXITS; l++) {
                double[] p = h.probs(l, z[l], batch[i] * D, new double[C]);
                double g = h.gate(l, ExitHeads.features(p, new double[3]));
                pi[i][l] = reach * g;
                reach *= 1 - g;
            }
        }
        return pi;
    }

    private static double weightedCe(ExitHeads h, float[][] z, int[] y, int[] batch, double[][] pi) {
        double loss = 0;
        for (int i = 0; i < batch.length; i++) {
            for (int l = 0; l < EXITS; l++) {
                double[] p = h.probs(l, z[l], batch[i] * D, new double[C]);
                loss += pi[i][l] * -Math.log(p[y[batch[i]]]) / batch.length;
            }
        }
        return loss;
    }

    @Test
    void gatesGradientMatchesCentralDifferences() {
        Random r = new Random(2);
        ExitHeads h = new ExitHeads(EXITS, D, C, 4);
        float[][] z = features(r);
        int[] y = new int[N];
        int[] batch = new int[N];
        float[] finalCe = new float[N];
        for (int e = 0; e < N; e++) {
            y[e] = r.nextInt(C);
            batch[e] = e;
            finalCe[e] = (float) (0.5 * r.nextDouble());
        }
        double[] cost = {0.3, 0.55, 0.8, 1.0};
        double[] grad = new double[EXITS * 4];
        h.gatesLoss(z, y, finalCe, cost, 0.7, batch, grad);
        for (int i = 0; i < grad.length; i++) {
            double[] arr = i % 4 < 3 ? h.a[i / 4] : h.c;
            int at = i % 4 < 3 ? i % 4 : i / 4;
            double keep = arr[at];
            double eps = 1e-6;
            arr[at] = keep + eps;
            double plus = h.gatesLoss(z, y, finalCe, cost, 0.7, batch, null);
            arr[at] = keep - eps;
            double minus = h.gatesLoss(z, y, finalCe, cost, 0.7, batch, null);
            arr[at] = keep;
            assertEquals((plus - minus) / (2 * eps), grad[i], 1e-6, "gate parameter " + i);
        }
    }

    @Test
    void uncertaintyFeaturesAndTheExitRule() {
        double[] phi = ExitHeads.features(new double[] {0.1, 0.6, 0.3}, new double[3]);
        assertEquals(0.6, phi[0], 1e-12);
        assertEquals(-(0.1 * Math.log(0.1) + 0.6 * Math.log(0.6) + 0.3 * Math.log(0.3)), phi[1], 1e-12);
        assertEquals(0.3, phi[2], 1e-12);
        ExitHeads h = new ExitHeads(EXITS, D, C, 5);
        float[][] z = features(new Random(3));
        int[] predicted = new int[1];
        java.util.Arrays.fill(h.c, -50);  // every gate shut: the backbone's head
        assertEquals(EXITS, h.exitOf(z, 0, predicted));
        assertEquals(-1, predicted[0]);
        h.c[1] = 50;  // exit 1 open: the first open gate wins
        assertEquals(1, h.exitOf(z, 0, predicted));
        double[] p = h.probs(1, z[1], 0, new double[C]);
        int best = 0;
        for (int k = 1; k < C; k++) {
            best = p[k] > p[best] ? k : best;
        }
        assertEquals(best, predicted[0]);
    }

    @Test
    void poolingStandardisesEachPatchThenAverages() {
        int p = 2;
        int d = 3;
        float[] rows = {1, 2, 3, 10, 10, 13};
        float[] out = new float[d];
        EarlyExit.pool(rows, 1, p, d, out, 0);
        double[] want = new double[d];
        for (int r = 0; r < p; r++) {
            double mean = (rows[r * d] + rows[r * d + 1] + rows[r * d + 2]) / 3.0;
            double var = 0;
            for (int j = 0; j < d; j++) {
                var += Math.pow(rows[r * d + j] - mean, 2) / d;
            }
            for (int j = 0; j < d; j++) {
                want[j] += (rows[r * d + j] - mean) / Math.sqrt(var + 1e-5) / p;
            }
        }
        for (int j = 0; j < d; j++) {
            assertEquals(want[j], out[j], 1e-5);
        }
    }

    @Test
    void flopsFromTheShapes() {
        // 4×4 images in 4 patches of 2×2, D=3, E=4 top-2 F=5 GELU, token hidden 6, channel hidden 7,
        // block 1 MoE (moeEvery 2), block 0 dense hidden 8; 10 classes.
        ModelSpec moe = new ModelSpec(16, 10, 3, 2, 4, 2, 5, Activation.GELU, NormKind.LAYERNORM,
                GateMode.TOPK_SOFTMAX, 0, 0, 0, 0, 0, 0, StnSpec.NONE, Precision.FP32);
        NinformerFlops f = new NinformerFlops(new NinformerSpec(moe, 1, 4, 2, 6, 7, 2, 8));
        int p = 4;
        double embed = 2.0 * p * 4 * 3;
        double mixer = 2.0 * p * 3 * 3 + 2.0 * 3 * (p * 6 + 6 * p) + 2.0 * p * (3 * 7 + 7 * 3);
        double dense = 2.0 * p * (3 * 8 + 8 * 3);
        double moeFfn = 2.0 * p * 3 * 4 + 2 * 2.0 * p * (3 * 5 + 5 * 3);
        assertEquals(embed, f.embed(), 1e-9);
        assertEquals(mixer + dense, f.block(0), 1e-9);
        assertEquals(mixer + moeFfn, f.block(1), 1e-9);
        assertEquals(embed + mixer + dense + mixer + moeFfn + 2.0 * 3 * 10, f.full(), 1e-9);
        assertTrue(f.through(0) < f.full());
    }
}
