package io.roundhouse.worker.robust;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.roundhouse.kernels.Activation;
import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.GateMode;
import io.roundhouse.kernels.Precision;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.kernels.cpu.CpuBackend;
import io.roundhouse.worker.config.ConfigException;
import io.roundhouse.worker.config.JobConfig;
import io.roundhouse.worker.model.Batch;
import io.roundhouse.worker.model.ImageModel;
import io.roundhouse.worker.model.ModelSpec;
import io.roundhouse.worker.model.MoeClassifier;
import io.roundhouse.worker.model.Ninformer;
import io.roundhouse.worker.model.NinformerSpec;
import io.roundhouse.worker.model.NormKind;
import io.roundhouse.worker.model.StepStats;
import io.roundhouse.worker.model.StnSpec;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The PGD attack: its budget, that it ascends, its keying by example, and the adversarial keys. */
class PgdTest {
    private static final int SIDE = 6;
    private static final int INPUTS = SIDE * SIDE;
    private static final double MEAN = 0.25;
    private static final double STD = 0.4;

    private static ImageModel model(String kind, int maxN) {
        ModelSpec moe = new ModelSpec(INPUTS, 4, 8, 2, 4, 2, 6, Activation.GELU, NormKind.LAYERNORM,
                GateMode.TOPK_SOFTMAX, 0, 0, 0, 0.01, 0.001, 0, StnSpec.NONE, Precision.FP32);
        Backend be = new CpuBackend();
        return kind.equals("ninformer")
                ? Ninformer.local(be, new NinformerSpec(moe, 1, SIDE, 3, 5, 7, 1, 6), 3, maxN)
                : MoeClassifier.local(be, moe, 3, maxN);
    }

    /** n images of pixels in [0, 1], normalised as the model reads them, and their labels. */
    private static Batch.Of images(Backend be, int n, Random r, float[] host, int[] labels) {
        for (int j = 0; j < n * INPUTS; j++) {
            host[j] = (float) ((r.nextDouble() - MEAN) / STD);
        }
        for (int i = 0; i < n; i++) {
            labels[i] = r.nextInt(4);
        }
        Tensor x = be.allocate("x", DType.FLOAT32, n, INPUTS);
        Tensor y = be.allocate("y", DType.INT32, n);
        be.write(x, host);
        be.write(y, labels);
        return new Batch.Of(x, y, labels);
    }

    @ParameterizedTest
    @ValueSource(strings = {"classifier", "ninformer"})
    void staysInTheBallAndTheBoxAndRaisesTheLoss(String kind) {
        int n = 8;
        ImageModel model = model(kind, n);
        Backend be = model.backend();
        float[] clean = new float[n * INPUTS];
        int[] labels = new int[n];
        Batch.Of batch = images(be, n, new Random(1), clean, labels);
        StepStats stats = new StepStats(model.moeLayers(), 4);
        double cleanLoss = model.forward(batch, n, false, 1, 0, 0, stats).crossEntropy;
        Tensor out = be.allocate("adv", DType.FLOAT32, n, INPUTS);
        double eps = 0.1;
        new Pgd(model, n, MEAN, STD).attack(batch, n, new Pgd.Attack(eps, eps / 4, 10, true),
                Pgd.Objective.CROSS_ENTROPY, n, 1, 0, 0, 0, out);
        float[] adv = new float[n * INPUTS];
        be.read(out, adv);
        boolean moved = false;
        for (int j = 0; j < adv.length; j++) {
            double pixel = adv[j] * STD + MEAN;
            double delta = (adv[j] - clean[j]) * STD;
            assertTrue(pixel >= -1e-6 && pixel <= 1 + 1e-6, "pixel " + j + " left [0, 1]: " + pixel);
            assertTrue(Math.abs(delta) <= eps + 1e-6, "pixel " + j + " moved " + delta + " > epsilon");
            moved |= Math.abs(delta) > eps / 2;
        }
        assertTrue(moved, "the attack should use its budget");
        double advLoss = model.forward(new Batch.Of(out, batch.targets(), labels), n, false, 1, 0, 0, stats)
                .crossEntropy;
        assertTrue(advLoss > cleanLoss + 0.01, "PGD should raise the loss: clean " + cleanLoss + ", attacked " + advLoss);
    }

    @Test
    void noStepsAndNoRandomStartIsTheImage() {
        int n = 3;
        ImageModel model = model("classifier", n);
        Backend be = model.backend();
        float[] clean = new float[n * INPUTS];
        Batch.Of batch = images(be, n, new Random(2), clean, new int[n]);
        Tensor out = be.allocate("adv", DType.FLOAT32, n, INPUTS);
        new Pgd(model, n, MEAN, STD).attack(batch, n, new Pgd.Attack(0.1, 0.01, 0, false),
                Pgd.Objective.CROSS_ENTROPY, n, 1, 0, 0, 0, out);
        float[] adv = new float[n * INPUTS];
        be.read(out, adv);
        assertArrayEquals(clean, adv);
    }

    /**
     * What W workers attack is what one worker attacks: an example's random start is keyed by its
     * global index, and (no capacity limit in evaluation) its gradient is its own.
     */
    @ParameterizedTest
    @ValueSource(strings = {"classifier", "ninformer"})
    void halvesAttackedApartEqualTheWholeBatch(String kind) {
        int n = 6;
        ImageModel model = model(kind, n);
        Backend be = model.backend();
        float[] clean = new float[n * INPUTS];
        int[] labels = new int[n];
        Batch.Of batch = images(be, n, new Random(3), clean, labels);
        Pgd pgd = new Pgd(model, n, MEAN, STD);
        Pgd.Attack a = new Pgd.Attack(0.1, 0.02, 4, true);
        Tensor whole = be.allocate("whole", DType.FLOAT32, n, INPUTS);
        pgd.attack(batch, n, a, Pgd.Objective.KL_TO_CLEAN, n, 9, 5, 1, 0, whole);
        float[] want = new float[n * INPUTS];
        be.read(whole, want);
        float[] got = new float[n * INPUTS];
        int h = n / 2;
        for (int part = 0; part < 2; part++) {
            Tensor x = be.allocate("x" + part, DType.FLOAT32, h, INPUTS);
            Tensor y = be.allocate("y" + part, DType.INT32, h);
            float[] xs = java.util.Arrays.copyOfRange(clean, part * h * INPUTS, (part + 1) * h * INPUTS);
            int[] ys = java.util.Arrays.copyOfRange(labels, part * h, (part + 1) * h);
            be.write(x, xs);
            be.write(y, ys);
            Tensor out = be.allocate("out" + part, DType.FLOAT32, h, INPUTS);
            pgd.attack(new Batch.Of(x, y, ys), h, a, Pgd.Objective.KL_TO_CLEAN, n, 9, 5, 1, (long) part * h, out);
            be.read(out, got, part * h * INPUTS);
        }
        for (int j = 0; j < want.length; j++) {
            assertEquals(want[j], got[j], 1e-5, "element " + j);
        }
    }

    @Test
    void changedRowsComparesSetsOfExperts() {
        int[] clean = {0, 1, 2, 3, 1, -1};
        int[] attacked = {1, 0, 2, 1, 1, -1};  // the same set in another order; a changed set; the same
        assertEquals(1, RobustEvaluation.changedRows(clean, attacked, 3, 2));
    }

    @Test
    void attackKeysNeedAdversarialTraining() {
        ConfigException e = assertThrows(ConfigException.class,
                () -> AdversarialSpec.from(JobConfig.of(Map.of("adv.epsilon", "0.2"))));
        assertTrue(e.getMessage().contains("adv.epsilon = 0.2") && e.getMessage().contains("adv.training=trades"),
                e.getMessage());
        AdversarialSpec spec = AdversarialSpec.from(JobConfig.of(Map.of("adv.training", "trades", "adv.epsilon", "0.2")));
        assertEquals(0.05, spec.attack().stepSize(), 1e-12, "the step size defaults to epsilon/4");
        assertEquals(AdversarialSpec.Mode.TRADES, spec.mode());
    }
}
