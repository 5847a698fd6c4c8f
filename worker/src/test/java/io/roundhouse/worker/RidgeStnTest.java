package io.roundhouse.worker;

import static io.roundhouse.worker.TensorFixtures.read;
import static io.roundhouse.worker.TensorFixtures.tensor;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.cpu.CpuBackend;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.worker.model.Hyper;
import io.roundhouse.worker.model.LinearLayer;
import io.roundhouse.worker.model.ParamStore;
import io.roundhouse.worker.model.Perturbation;
import io.roundhouse.worker.model.StnResponse;
import io.roundhouse.worker.model.StnSpec;
import io.roundhouse.worker.train.AdamW;
import io.roundhouse.worker.train.HyperOptimizer;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The Self-Tuning Network on ridge regression, where the answer is known: the weight-decay
 * coefficient it tunes online converges near the value a grid over the closed-form solution finds
 * best on the validation set.
 *
 * <p>The model is an STN linear layer {@code ŷ = x·(w + s·w_r) + t·b_r}, {@code [s; t] = U·Δ}; the
 * training loss per example is {@code (ŷ − y)² + λ̃·‖w + s·w_r‖²} with {@code λ̃ = softplus(u + Δ)},
 * so the response learns how the weights move with λ. Hyper steps use the validation MSE only, and
 * {@link HyperOptimizer} (the trainer's) steps u and σ.
 */
class RidgeStnTest {
    private static final int D = 20;
    private static final int N_TRAIN = 30;
    private static final int N_VALID = 500;

    @ParameterizedTest(name = "from λ = {0}")
    @ValueSource(doubles = {0.02, 3.0})
    void tunedWeightDecayConvergesNearTheGridOptimum(double lambda0) {
        Random r = new Random(7);
        double[] wStar = new double[D];
        for (int j = 0; j < D; j++) {
            wStar[j] = r.nextGaussian() * 0.5;
        }
        double[][] xt = features(r, N_TRAIN);
        double[] yt = targets(r, xt, wStar);
        double[][] xv = features(r, N_VALID);
        double[] yv = targets(r, xv, wStar);

        // The grid: closed-form ridge solutions, scored on the validation set.
        double bestLambda = 0;
        double bestMse = Double.POSITIVE_INFINITY;
        for (int k = 0; k <= 120; k++) {
            double lambda = Math.pow(10, -4 + k * 0.05);
            double mse = mse(ridge(xt, yt, lambda), xv, yv);
            if (mse < bestMse) {
                bestMse = mse;
                bestLambda = lambda;
            }
        }

        Backend be = new CpuBackend();
        ParamStore ps = new ParamStore(be, 1);
        LinearLayer layer = new LinearLayer(be, ps, "ridge", D, 1, false, 0.1, N_VALID);
        StnResponse resp = new StnResponse(be, ps, "ridge", D, 1, 1, 0.1, N_VALID);
        // One positive hyperparameter column; the toy's regulariser is computed here, not by the model.
        Perturbation pert = new Perturbation(be, new StnSpec(List.of(Hyper.Z_LOSS), Set.of("embed")), N_VALID);
        layer.attach(resp, pert);
        AdamW adam = new AdamW(be, ps, 0.9, 0.999, 1e-8, 0, 0);
        HyperOptimizer hyper = new HyperOptimizer(new double[] {Hyper.Z_LOSS.unconstrained(lambda0)}, 0.5, 0.03, 1e-3);
        Tensor xTrain = tensor(be, flat(xt), N_TRAIN, D);
        Tensor xValid = tensor(be, flat(xv), N_VALID, D);
        float[] eps = new float[N_VALID];
        float[] delta = new float[N_VALID];
        int warmup = 300;
        int steps = 6000;
        for (int step = 1; step <= steps; step++) {
            // weight step on perturbed λ̃
            double u = hyper.u(0);
            double sigma = hyper.sigma(0);
            for (int i = 0; i < N_TRAIN; i++) {
                eps[i] = (float) r.nextGaussian();
                delta[i] = (float) (sigma * eps[i]);
            }
            ps.zeroGrads();
            pert.set(N_TRAIN, java.util.Arrays.copyOf(delta, N_TRAIN), null);
            float[] yHat = read(be, layer.forward(xTrain));
            float[] dy = new float[N_TRAIN];
            for (int i = 0; i < N_TRAIN; i++) {
                dy[i] = (float) (2 * (yHat[i] - yt[i]) / N_TRAIN);
            }
            layer.backward(tensor(be, dy, N_TRAIN, 1), false);
            addRegulariserGradients(be, layer, resp, delta, u);
            adam.step(0.01, 0);
            if (step > warmup && (step - warmup) % 5 == 0) {
                // hyper step on the validation MSE
                for (int i = 0; i < N_VALID; i++) {
                    eps[i] = (float) r.nextGaussian();
                    delta[i] = (float) (hyper.sigma(0) * eps[i]);
                }
                pert.set(N_VALID, delta, null);
                float[] yv2 = read(be, layer.forward(xValid));
                float[] dv = new float[N_VALID];
                for (int i = 0; i < N_VALID; i++) {
                    dv[i] = (float) (2 * (yv2[i] - yv[i]) / N_VALID);
                }
                layer.backward(tensor(be, dv, N_VALID, 1), false);
                float[] dd = read(be, pert.dDelta());
                float gu = 0;
                float gs = 0;
                for (int i = 0; i < N_VALID; i++) {
                    gu += dd[i];
                    gs += dd[i] * eps[i];
                }
                hyper.step(new float[] {gu}, new float[] {gs});
            }
        }
        double tuned = Hyper.softplus(hyper.u(0));
        double tunedMse = mse(ridge(xt, yt, tuned), xv, yv);
        System.out.printf("ridge: grid optimum λ* = %.4f (validation MSE %.4f); STN from λ = %.2f reached λ = %.4f "
                        + "(closed-form validation MSE there %.4f, σ = %.3f, %d hyper steps)%n", bestLambda, bestMse,
                lambda0, tuned, tunedMse, hyper.sigma(0), hyper.steps());
        assertTrue(Math.abs(Math.log(tuned / bestLambda)) < Math.log(2), "tuned λ " + tuned + " within 2× of " + bestLambda);
        assertTrue(tunedMse <= 1.02 * bestMse, "validation MSE " + tunedMse + " within 2% of the grid's " + bestMse);
    }

    /**
     * Adds the gradients of {@code (1/N) Σ_i λ̃_i ‖w + s_i w_r‖²} to w, w_r and U_s (s_i = Δ_i·U_s).
     */
    private static void addRegulariserGradients(Backend be, LinearLayer layer, StnResponse resp, float[] delta, double u) {
        float[] w = read(be, layer.w.value());
        float[] wr = read(be, resp.wr.value());
        float us = read(be, resp.us.value())[0];
        float[] gw = read(be, layer.w.grad());
        float[] gwr = read(be, resp.wr.grad());
        float[] gus = read(be, resp.us.grad());
        for (int i = 0; i < N_TRAIN; i++) {
            double s = delta[i] * us;
            double lam = Hyper.softplus(u + delta[i]);
            double dot = 0;
            for (int j = 0; j < D; j++) {
                double e = w[j] + s * wr[j];
                gw[j] += (float) (2 * lam * e / N_TRAIN);
                gwr[j] += (float) (2 * lam * s * e / N_TRAIN);
                dot += wr[j] * e;
            }
            gus[0] += (float) (2 * lam * dot / N_TRAIN * delta[i]);
        }
        be.write(layer.w.grad(), gw);
        be.write(resp.wr.grad(), gwr);
        be.write(resp.us.grad(), gus);
    }

    private static double[][] features(Random r, int n) {
        double[][] x = new double[n][D];
        for (double[] row : x) {
            for (int j = 0; j < D; j++) {
                row[j] = r.nextGaussian();
            }
        }
        return x;
    }

    private static double[] targets(Random r, double[][] x, double[] w) {
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            y[i] = dot(x[i], w) + 1.5 * r.nextGaussian();
        }
        return y;
    }

    private static float[] flat(double[][] x) {
        float[] f = new float[x.length * D];
        for (int i = 0; i < x.length; i++) {
            for (int j = 0; j < D; j++) {
                f[i * D + j] = (float) x[i][j];
            }
        }
        return f;
    }

    /** argmin (1/N)‖Xw − y‖² + λ‖w‖²: (XᵀX/N + λI) w = Xᵀy/N, by Gaussian elimination. */
    static double[] ridge(double[][] x, double[] y, double lambda) {
        int n = x.length;
        double[][] a = new double[D][D + 1];
        for (int p = 0; p < D; p++) {
            for (int q = 0; q < D; q++) {
                double s = 0;
                for (int i = 0; i < n; i++) {
                    s += x[i][p] * x[i][q];
                }
                a[p][q] = s / n + (p == q ? lambda : 0);
            }
            double s = 0;
            for (int i = 0; i < n; i++) {
                s += x[i][p] * y[i];
            }
            a[p][D] = s / n;
        }
        for (int c = 0; c < D; c++) {
            int piv = c;
            for (int p = c + 1; p < D; p++) {
                if (Math.abs(a[p][c]) > Math.abs(a[piv][c])) {
                    piv = p;
                }
            }
            double[] t = a[c];
            a[c] = a[piv];
            a[piv] = t;
            for (int p = c + 1; p < D; p++) {
                double f = a[p][c] / a[c][c];
                for (int q = c; q <= D; q++) {
                    a[p][q] -= f * a[c][q];
                }
            }
        }
        double[] w = new double[D];
        for (int p = D - 1; p >= 0; p--) {
            double s = a[p][D];
            for (int q = p + 1; q < D; q++) {
                s -= a[p][q] * w[q];
            }
            w[p] = s / a[p][p];
        }
        return w;
    }

    private static double mse(double[] w, double[][] x, double[] y) {
        double s = 0;
        for (int i = 0; i < x.length; i++) {
            double e = dot(x[i], w) - y[i];
            s += e * e;
        }
        return s / x.length;
    }

    private static double dot(double[] a, double[] b) {
        double s = 0;
        for (int j = 0; j < a.length; j++) {
            s += a[j] * b[j];
        }
        return s;
    }
}
