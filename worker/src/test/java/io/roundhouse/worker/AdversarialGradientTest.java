package io.roundhouse.worker;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.roundhouse.kernels.Activation;
import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.GateMode;
import io.roundhouse.kernels.Precision;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.kernels.cpu.CpuBackend;
import io.roundhouse.worker.model.Batch;
import io.roundhouse.worker.model.ClassificationLoss;
import io.roundhouse.worker.model.ImageModel;
import io.roundhouse.worker.model.ModelSpec;
import io.roundhouse.worker.model.MoeClassifier;
import io.roundhouse.worker.model.Ninformer;
import io.roundhouse.worker.model.NinformerSpec;
import io.roundhouse.worker.model.NormKind;
import io.roundhouse.worker.model.StepStats;
import io.roundhouse.worker.model.StnSpec;
import io.roundhouse.worker.robust.Pgd;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The gradients adversarial training adds, against central differences: the input gradient of the
 * image models (through input dropout, the NiNformer's patches), and the parameter gradients of
 * the attack's {@code KL(t ‖ f(x'))} and of TRADES's {@code CE(f(x), y) + β·KL(f(x) ‖ f(x'))}.
 */
class AdversarialGradientTest {
    private static final int SIDE = 6;
    private static final int INPUTS = SIDE * SIDE;
    private static final int CLASSES = 4;

    private static ModelSpec moe(double dropoutInput) {
        return new ModelSpec(INPUTS, CLASSES, 6, 2, 4, 2, 5, Activation.GELU, NormKind.LAYERNORM,
                GateMode.TOPK_SOFTMAX, 0, dropoutInput, 0.1, 0.05, 0.01, 0.1, StnSpec.NONE, Precision.FP32);
    }

    private static ImageModel model(String kind, double dropoutInput, int maxN) {
        Backend be = new CpuBackend();
        return kind.equals("ninformer")
                ? Ninformer.local(be, new NinformerSpec(moe(dropoutInput), 1, SIDE, 3, 5, 7, 1, 6), 11, maxN)
                : MoeClassifier.local(be, moe(dropoutInput), 11, maxN);
    }

    @ParameterizedTest(name = "{0} train={1} input dropout {2}")
    @CsvSource({"classifier, false, 0", "classifier, true, 0.3", "ninformer, false, 0", "ninformer, true, 0.3"})
    void inputGradientMatches(String kind, boolean train, double dropout) {
        int n = 3;
        ImageModel model = model(kind, dropout, n);
        Backend be = model.backend();
        Random r = new Random(5);
        float[] xs = gaussian(r, n * INPUTS);
        int[] ys = labels(r, n);
        Tensor x = be.allocate("x", DType.FLOAT32, n, INPUTS);
        Tensor y = be.allocate("y", DType.INT32, n);
        be.write(x, xs);
        be.write(y, ys);
        Batch.Of batch = new Batch.Of(x, y, ys);
        StepStats stats = new StepStats(model.moeLayers(), CLASSES);
        model.params().zeroGrads();
        model.forward(batch, n, train, 7, 3, 0, stats);
        float[] dx = new float[n * INPUTS];
        be.read(model.backwardToInput(n), dx);
        boolean someZero = false;
        for (int trial = 0; trial < 3; trial++) {
            float[] v = gaussian(r, n * INPUTS);
            double analytic = 0;
            for (int j = 0; j < v.length; j++) {
                analytic += (double) dx[j] * v[j];
                someZero |= dx[j] == 0;
            }
            double h = 1e-3;
            double plus = lossAt(model, batch, x, xs, v, h, train, stats);
            double minus = lossAt(model, batch, x, xs, v, -h, train, stats);
            double numeric = (plus - minus) / (2 * h);
            System.out.printf("%s input direction %d: analytic %.6f numeric %.6f%n", kind, trial, analytic, numeric);
            assertTrue(Math.abs(numeric - analytic) <= 1e-2 * Math.max(1, Math.abs(analytic)),
                    kind + " input direction " + trial + ": analytic " + analytic + " vs numeric " + numeric);
        }
        assertTrue(!train || dropout == 0 || someZero, "input dropout zeroes the gradient of dropped pixels");
    }

    private static double lossAt(ImageModel model, Batch.Of batch, Tensor x, float[] xs, float[] v, double h,
                                 boolean train, StepStats stats) {
        float[] at = new float[xs.length];
        for (int j = 0; j < at.length; j++) {
            at[j] = (float) (xs[j] + h * v[j]);
        }
        model.backend().write(x, at);
        double loss = model.forward(batch, at.length / INPUTS, train, 7, 3, 0, stats).totalLoss();
        model.backend().write(x, xs);
        return loss;
    }

    @ParameterizedTest(name = "{0} {1}")
    @CsvSource({"classifier, KL_TO_TARGET", "classifier, TRADES", "ninformer, KL_TO_TARGET", "ninformer, TRADES"})
    void adversarialObjectivesMatch(String kind, ClassificationLoss.Mode mode) {
        int n = 4;  // TRADES: 2 clean rows and their copies
        ImageModel model = model(kind, 0.2, n);
        Backend be = model.backend();
        Random r = new Random(13);
        float[] xs = gaussian(r, n * INPUTS);
        int[] ys = labels(r, n);
        if (mode == ClassificationLoss.Mode.TRADES) {
            for (int j = 0; j < n / 2 * INPUTS; j++) {
                xs[n / 2 * INPUTS + j] = xs[j] + 0.3f * (float) r.nextGaussian();
            }
            System.arraycopy(ys, 0, ys, n / 2, n / 2);
            model.loss().trades(6.0);
        } else {
            float[] t = new float[n * CLASSES];
            for (int i = 0; i < n; i++) {
                double sum = 0;
                for (int j = 0; j < CLASSES; j++) {
                    t[i * CLASSES + j] = (float) Math.exp(r.nextGaussian());
                    sum += t[i * CLASSES + j];
                }
                for (int j = 0; j < CLASSES; j++) {
                    t[i * CLASSES + j] /= (float) sum;
                }
            }
            model.loss().klTo(t);
        }
        int examples = mode == ClassificationLoss.Mode.TRADES ? n / 2 : n;
        Tensor x = be.allocate("x", DType.FLOAT32, n, INPUTS);
        Tensor y = be.allocate("y", DType.INT32, n);
        be.write(x, xs);
        be.write(y, ys);
        Batch.Of batch = new Batch.Of(x, y, ys);
        StepStats stats = new StepStats(model.moeLayers(), CLASSES);
        model.params().zeroGrads();
        model.forward(batch, n, true, 7, 3, 0, stats);
        model.backward(examples);
        ModelGradientTest.checkDirections(model, be, () -> {
            model.forward(batch, n, true, 7, 3, 0, stats);
            return model.loss().objectiveSum() / examples + stats.loadBalanceLoss + stats.zLoss;
        }, r, 3, kind + " " + mode);
    }

    private static float[] gaussian(Random r, int size) {
        float[] v = new float[size];
        for (int j = 0; j < size; j++) {
            v[j] = (float) r.nextGaussian();
        }
        return v;
    }

    private static int[] labels(Random r, int n) {
        int[] ys = new int[n];
        for (int j = 0; j < n; j++) {
            ys[j] = r.nextInt(CLASSES);
        }
        return ys;
    }
}
