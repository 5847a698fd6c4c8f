package io.roundhouse.worker.model;

import io.roundhouse.kernels.Activation;
import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.GateMode;
import io.roundhouse.kernels.Precision;
import io.roundhouse.kernels.Tensor;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * The start-up check that a backend computes what the CPU reference computes, before a job trains
 * on it. A small MoE classifier (2 blocks of 4 experts, top-2, a capacity limit that drops copies,
 * dropout, both router losses) is built from the same seed on both backends and takes one training
 * forward and backward on the same batch; the losses and every parameter's gradient are compared.
 * It runs three times: fp32 with GELU, LayerNorm and top-k-then-softmax gates; bf16 with SwiGLU,
 * RMSNorm and renormalised softmax gates; fp32 with a Self-Tuning Network on every layer, router
 * jitter and per-example hyperparameters (a weight step, whose perturbation gradient is compared
 * too). Then one AdamW step on random tensors. So every kernel any training step launches runs.
 * It takes about 0.1 s; it is a guard, so that {@code backend = auto} never trains on a backend that
 * computes other numbers, not a substitute for the op tests.
 *
 * <p>Tolerances are relative to the largest reference value of each tensor: 1e-3 in fp32 (the
 * backends sum in other orders), 2e-2 in bf16 (an operand one ulp apart can round to another bf16
 * value); a wrong kernel is off by its whole value.
 */
public final class BackendCheck {
    static final double FP32_TOL = 1e-3;
    static final double BF16_TOL = 2e-2;
    private static final int N = 24;
    private static final int INPUTS = 20;
    private static final int CLASSES = 5;
    private static final List<Hyper> MODEL_HYPERS = MoeClassifier.TUNABLE.stream()
            .filter(x -> x != Hyper.AUGMENT_SHIFT).toList();  // augment.shift acts on the data

    private BackendCheck() {
    }

    /** @return what differs, a line per tensor (empty when {@code candidate} agrees with {@code reference}) */
    public static List<String> differences(Backend reference, Backend candidate) {
        List<String> out = new ArrayList<>();
        ModelSpec fp32 = new ModelSpec(INPUTS, CLASSES, 16, 2, 4, 2, 24, Activation.GELU, NormKind.LAYERNORM,
                GateMode.TOPK_SOFTMAX, 1.0, 0.1, 0.1, 0.01, 0.001);
        ModelSpec bf16 = new ModelSpec(INPUTS, CLASSES, 16, 2, 4, 2, 24, Activation.SWIGLU, NormKind.RMSNORM,
                GateMode.SOFTMAX_TOPK_RENORM, 1.0, 0.1, 0.1, 0.01, 0.001).withPrecision(Precision.BF16);
        // A Self-Tuning Network on every layer, a weight step with per-example hyperparameters: the STN ops.
        ModelSpec stn = new ModelSpec(INPUTS, CLASSES, 16, 2, 4, 2, 24, Activation.GELU, NormKind.LAYERNORM,
                GateMode.SOFTMAX_TOPK, 1.0, 0.1, 0.1, 0.01, 0.001, 0.1, new StnSpec(MODEL_HYPERS,
                java.util.Set.copyOf(MoeClassifier.STN_LAYERS)), Precision.FP32);
        for (ModelSpec spec : List.of(fp32, bf16, stn)) {
            double tol = spec.precision() == Precision.BF16 ? BF16_TOL : FP32_TOL;
            String tag = spec.precision().key() + " " + spec.activation().name().toLowerCase(java.util.Locale.ROOT) + "/"
                    + spec.norm().name().toLowerCase(java.util.Locale.ROOT) + (spec.stn().tuned().isEmpty() ? "" : " STN") + ": ";
            Map<String, float[]> want = step(reference, spec);
            Map<String, float[]> got = step(candidate, spec);
            for (Map.Entry<String, float[]> e : want.entrySet()) {
                compare(out, tag + e.getKey(), e.getValue(), got.get(e.getKey()), tol);
            }
        }
        adamW(out, reference, candidate);
        return out;
    }

    /** One training forward and backward: the losses, then every trainable parameter's gradient. */
    private static Map<String, float[]> step(Backend be, ModelSpec spec) {
        MoeClassifier model = MoeClassifier.local(be, spec, 11, N);
        Random r = new Random(5);
        float[] xv = new float[N * INPUTS];
        for (int j = 0; j < xv.length; j++) {
            xv[j] = (float) r.nextGaussian();
        }
        int[] labels = new int[N];
        for (int j = 0; j < N; j++) {
            labels[j] = r.nextInt(CLASSES);
        }
        Tensor x = be.allocate("check.x", DType.FLOAT32, N, INPUTS);
        Tensor y = be.allocate("check.y", DType.INT32, N);
        be.write(x, xv);
        be.write(y, labels);
        int h = spec.stn().tuned().size();
        if (h > 0) {
            for (Param p : model.params().all()) {
                if (p.name().contains(".stn.u")) {  // U = 0 at start would make every response path zero
                    float[] u = new float[p.value().size()];
                    for (int j = 0; j < u.length; j++) {
                        u[j] = (float) (0.3 * r.nextGaussian());
                    }
                    be.write(p.value(), u);
                }
            }
            float[] delta = new float[N * h];
            for (int j = 0; j < delta.length; j++) {
                delta[j] = (float) (0.3 * r.nextGaussian());
            }
            float[][] values = new float[h][N];
            for (int j = 0; j < h; j++) {
                for (int i = 0; i < N; i++) {
                    // Inside every hyperparameter's range: rates, jitter and coefficients of a few percent.
                    values[j][i] = (float) (0.02 + 0.1 * r.nextDouble());
                }
            }
            model.perturbation().set(N, delta, values);
        }
        model.params().zeroGrads();
        StepStats stats = model.forward(x, y, labels, true, 3, 1, new StepStats(spec.blocks(), spec.experts()));
        model.backward();
        Map<String, float[]> out = new LinkedHashMap<>();
        out.put("losses (cross-entropy, load balance, z, dropped copies)", new float[] {(float) stats.crossEntropy,
            (float) stats.loadBalanceLoss, (float) stats.zLoss, stats.droppedCopies});
        for (Param p : model.params().trainable()) {
            float[] g = new float[p.grad().size()];
            be.read(p.grad(), g);
            out.put(p.name() + " gradient", g);
        }
        if (h > 0) {
            float[] dDelta = new float[N * h];
            be.read(model.perturbation().dDelta().rows(N), dDelta);
            out.put("the perturbation's gradient", dDelta);
        }
        return out;
    }

    private static void adamW(List<String> out, Backend reference, Backend candidate) {
        List<List<float[]>> results = new ArrayList<>();
        for (Backend be : List.of(reference, candidate)) {
            Random r = new Random(9);
            Tensor[] t = new Tensor[4];  // w, g, m, v
            for (int i = 0; i < t.length; i++) {
                float[] v = new float[257];
                for (int j = 0; j < v.length; j++) {
                    double z = r.nextGaussian();
                    v[j] = (float) (i == 3 ? z * z * 1e-3 : z);
                }
                t[i] = be.allocate("check.adamw" + i, DType.FLOAT32, v.length);
                be.write(t[i], v);
            }
            be.adamWStep(t[0], t[1], t[2], t[3], 0.01f, 0.9f, 0.999f, 1e-8f, 0.01f, 3);
            List<float[]> got = new ArrayList<>();
            for (int i : new int[] {0, 2, 3}) {
                float[] v = new float[257];
                be.read(t[i], v);
                got.add(v);
            }
            results.add(got);
        }
        String[] names = {"AdamW w", "AdamW m", "AdamW v"};
        for (int i = 0; i < names.length; i++) {
            compare(out, names[i], results.get(0).get(i), results.get(1).get(i), 1e-5);
        }
    }

    /** Adds a line to {@code out} when got is not within tol of want's largest magnitude (NaN fails). */
    static void compare(List<String> out, String what, float[] want, float[] got, double tol) {
        double scale = 0;
        for (float v : want) {
            scale = Math.max(scale, Math.abs(v));
        }
        int worst = -1;
        double worstDiff = 0;
        for (int j = 0; j < want.length; j++) {
            double d = Math.abs((double) want[j] - got[j]);
            if (Double.isNaN(d)) {
                d = Double.POSITIVE_INFINITY;  // NaN counts as the worst (the first one is named)
            }
            if (d > worstDiff) {
                worstDiff = d;
                worst = j;
            }
        }
        if (worst >= 0 && worstDiff > tol * Math.max(scale, 1e-6)) {
            out.add(String.format("%s differs: element %d is %s, the CPU's %s (%.1e of its largest value, %s allowed)",
                    what, worst, got[worst], want[worst], worstDiff / Math.max(scale, 1e-6), tol));
        }
    }
}
