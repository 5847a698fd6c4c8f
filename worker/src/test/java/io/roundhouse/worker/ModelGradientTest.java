package io.roundhouse.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.roundhouse.kernels.Activation;
import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.GateMode;
import io.roundhouse.kernels.Precision;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.kernels.cpu.CpuBackend;
import io.roundhouse.worker.model.Batch;
import io.roundhouse.worker.model.LmSpec;
import io.roundhouse.worker.model.ModelSpec;
import io.roundhouse.worker.model.MoeClassifier;
import io.roundhouse.worker.model.Model;
import io.roundhouse.worker.model.MoeTransformer;
import io.roundhouse.worker.model.Ninformer;
import io.roundhouse.worker.model.NinformerSpec;
import io.roundhouse.worker.model.NormKind;
import io.roundhouse.worker.model.Param;
import io.roundhouse.worker.model.RouterSpec;
import io.roundhouse.worker.model.StepStats;
import io.roundhouse.worker.model.StnSpec;
import java.util.List;
import java.util.Random;
import java.util.function.DoubleSupplier;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The whole classifier's backward against finite differences of its loss, along random directions
 * in parameter space, with every feature on: dropout, a capacity limit that drops copies, both
 * router losses (capacity 0.75 guarantees drops: 4 experts × 4 slots < 9 tokens × 2 copies).
 * Catches wiring errors the op tests cannot see (a missing router path, a
 * residual added twice, a gradient not accumulated).
 */
class ModelGradientTest {

    @ParameterizedTest(name = "{0} {1} {2} {3} shared experts {4} pre-gating {5}")
    @CsvSource({"GELU, LAYERNORM, TOPK_SOFTMAX, SOFTMAX, 0, false", "SWIGLU, RMSNORM, SOFTMAX_TOPK, SOFTMAX, 0, false",
            "GELU, RMSNORM, SOFTMAX_TOPK_RENORM, SOFTMAX, 1, false", "SWIGLU, RMSNORM, TOPK_SOFTMAX, SIGMOID, 2, false",
            "GELU, LAYERNORM, TOPK_SOFTMAX, NOISY, 0, false", "SWIGLU, LAYERNORM, SOFTMAX_TOPK, NOISY, 1, true",
            "GELU, RMSNORM, TOPK_SOFTMAX, DENSE_TO_SPARSE, 0, false", "GELU, LAYERNORM, TOPK_SOFTMAX, EXPERT_CHOICE, 0, false",
            "GELU, LAYERNORM, TOPK_SOFTMAX, SOFTMAX, 0, true", "SWIGLU, RMSNORM, TOPK_SOFTMAX, DENSE_TO_SPARSE, 1, true"})
    void directionalDerivativesMatch(Activation act, NormKind norm, GateMode gate, RouterSpec.Kind router, int shared,
                                     boolean preGating) {
        int n = 9;
        ModelSpec spec = new ModelSpec(12, 4, 6, 2, 4, 2, 5, act, norm, gate, 0.75, 0.2, 0.2, 0.05, 0.01)
                .withRouter(router == RouterSpec.Kind.SIGMOID ? new RouterSpec(router, 0.01)
                        : RouterFixtures.spec(router, 10)).withSharedExperts(shared);
        spec = spec.withRouter(spec.router().withPreGating(preGating));
        Backend be = new CpuBackend();
        MoeClassifier model = MoeClassifier.local(be, spec, 11, n);
        Random r = new Random(5);
        float[] xs = new float[n * 12];
        for (int j = 0; j < xs.length; j++) {
            xs[j] = (float) r.nextGaussian();
        }
        int[] ys = new int[n];
        for (int j = 0; j < n; j++) {
            ys[j] = r.nextInt(4);
        }
        Tensor x = be.allocate("x", DType.FLOAT32, n, 12);
        Tensor y = be.allocate("y", DType.INT32, n);
        be.write(x, xs);
        be.write(y, ys);
        StepStats stats = new StepStats(spec.blocks(), spec.experts());
        model.params().zeroGrads();
        model.forward(x, y, ys, true, 7, 3, stats);
        int dropped = stats.droppedCopies;
        model.backward();

        checkDirections(model, be, () -> model.forward(x, y, ys, true, 7, 3, stats).totalLoss(), r, 4,
                String.format("model %s/%s/%s/%s%s (dropped copies %d)", act, norm, gate, router,
                        preGating ? " pre-gated" : "", dropped));
        if (router != RouterSpec.Kind.EXPERT_CHOICE) {
            assertTrue(dropped > 0, "the capacity limit should drop some copies in this test");
        } else {
            assertEquals(0, dropped, "expert choice bounds its copies itself");
        }
    }

    /**
     * The whole language model's backward the same way: attention (GQA, the gate or not), MoE and
     * dense blocks, residual and attention dropout, router jitter and losses, and the output tied
     * to the embedding or not.
     */
    @ParameterizedTest(name = "lm tied={0} gate={1} moeEvery={2} kvHeads={3} shared experts={4} pre-gating={5}")
    @CsvSource({"false, true, 1, 2, 0, false", "true, true, 2, 4, 1, false", "true, false, 1, 1, 0, false",
            "false, true, 1, 2, 1, true"})
    void languageModelDirectionalDerivativesMatch(boolean tied, boolean gate, int moeEvery, int kvHeads, int shared,
                                                  boolean preGating) {
        int b = 2;
        int t = 6;
        int v = 20;
        LmSpec spec = new LmSpec(new ModelSpec(v, v, 8, 2, 4, 2, 5, Activation.SWIGLU, NormKind.RMSNORM,
                GateMode.TOPK_SOFTMAX, 0, 0, 0.2, 0.05, 0.01, 0.1, StnSpec.NONE, Precision.FP32).withSharedExperts(shared)
                .withRouter(RouterSpec.SOFTMAX.withPreGating(preGating)),
                t, 4, kvHeads, 10000,
                moeEvery, 6, gate, 0.2, tied);
        Backend be = new CpuBackend();
        MoeTransformer model = MoeTransformer.local(be, spec, 11, b);
        Random r = new Random(6);
        int[] in = new int[b * t];
        int[] out = new int[b * t];
        for (int j = 0; j < in.length; j++) {
            in[j] = r.nextInt(v);
            out[j] = r.nextInt(v);
        }
        Tensor ti = be.allocate("in", DType.INT32, in.length);
        Tensor to = be.allocate("out", DType.INT32, out.length);
        be.write(ti, in);
        be.write(to, out);
        Batch batch = new Batch() {
            public Tensor inputs() {
                return ti;
            }

            public Tensor targets() {
                return to;
            }

            public int[] hostTargets() {
                return out;
            }
        };
        StepStats stats = new StepStats(model.moeLayers(), 4);
        model.params().zeroGrads();
        model.forward(batch, b, true, 7, 3, 0, stats);
        model.backward(b);
        assertTrue(tied == (model.params().all().stream().noneMatch(q -> q.name().equals("head.w"))),
                "a tied model has no head.w");
        checkDirections(model, be, () -> model.forward(batch, b, true, 7, 3, 0, stats).totalLoss(), r, 3,
                String.format("lm tied=%s gate=%s moeEvery=%d kv=%d", tied, gate, moeEvery, kvHeads));
    }

    /**
     * The NiNformer's backward the same way: patches, the gating unit (gate ⊙ mixer, the token
     * mixing across patches, the channel mixing), MoE and dense FFN blocks, residual and input
     * dropout, a capacity limit that drops copies, router jitter and losses, any router.
     */
    @ParameterizedTest(name = "ninformer patch {0} moeEvery {1} {2} capacity {3}")
    @CsvSource({"3, 1, SOFTMAX, 0.75", "3, 2, SOFTMAX, 0", "2, 1, NOISY, 0.75", "3, 1, EXPERT_CHOICE, 1",
            "2, 0, SOFTMAX, 0", "3, 1, SIGMOID, 0.75", "2, 1, SOFTMAX, 0"})
    void ninformerDirectionalDerivativesMatch(int patch, int moeEvery, RouterSpec.Kind router, double capacity) {
        int n = 3;
        int side = 6;
        ModelSpec moe = new ModelSpec(side * side, 4, 6, 2, 4, 2, 5, Activation.GELU, NormKind.LAYERNORM,
                GateMode.TOPK_SOFTMAX, capacity, 0.2, 0.2, 0.05, 0.01, 0.1, StnSpec.NONE, Precision.FP32)
                .withRouter(router == RouterSpec.Kind.SIGMOID ? new RouterSpec(router, 0.01)
                        : RouterFixtures.spec(router, 10));
        NinformerSpec spec = new NinformerSpec(moe, 1, side, patch, 5, 7, moeEvery, 6);
        Backend be = new CpuBackend();
        Ninformer model = Ninformer.local(be, spec, 11, n);
        Random r = new Random(7);
        float[] xs = new float[n * side * side];
        for (int j = 0; j < xs.length; j++) {
            xs[j] = (float) r.nextGaussian();
        }
        int[] ys = new int[n];
        for (int j = 0; j < n; j++) {
            ys[j] = r.nextInt(4);
        }
        Tensor x = be.allocate("x", DType.FLOAT32, n, side * side);
        Tensor y = be.allocate("y", DType.INT32, n);
        be.write(x, xs);
        be.write(y, ys);
        StepStats stats = new StepStats(model.moeLayers(), 4);
        model.params().zeroGrads();
        model.forward(x, y, ys, true, 7, 3, 0, stats);
        int dropped = stats.droppedCopies;
        model.backward(n);
        assertEquals(n * spec.patches(), stats.routedRows, "every patch is a token of the MoE layers");
        checkDirections(model, be, () -> model.forward(x, y, ys, true, 7, 3, 0, stats).totalLoss(), r, 4,
                String.format("ninformer patch %d moeEvery %d %s (dropped copies %d)", patch, moeEvery, router,
                        dropped));
        if (capacity == 0.75 && router != RouterSpec.Kind.EXPERT_CHOICE) {
            assertTrue(dropped > 0, "the capacity limit should drop some copies in this test");
        }
    }

    /**
     * {@code trials} random directions v in parameter space: the gradient's {@code g·v} against
     * {@code (L(θ + hv) − L(θ − hv)) / 2h} with {@code loss} evaluated at the parameters written.
     * h is small enough that no token changes experts between θ−hv and θ+hv (routing is piecewise
     * constant; at h = 1e-2 these tiny models do cross such boundaries).
     */
    static void checkDirections(Model model, Backend be, DoubleSupplier loss, Random r, int trials,
                                        String label) {
        List<Param> params = model.params().all();
        for (int trial = 0; trial < trials; trial++) {
            double analytic = 0;
            float[][] dir = new float[params.size()][];
            float[][] base = new float[dir.length][];
            for (int p = 0; p < dir.length; p++) {
                Param prm = params.get(p);
                base[p] = model.params().read(prm);
                float[] g = model.params().readGrad(prm);
                dir[p] = new float[g.length];
                for (int j = 0; j < g.length; j++) {
                    dir[p][j] = (float) r.nextGaussian();
                    analytic += (double) g[j] * dir[p][j];
                }
            }
            double h = 1e-4;
            double plus = at(params, be, base, dir, h, loss);
            double minus = at(params, be, base, dir, -h, loss);
            at(params, be, base, dir, 0, loss);
            double numeric = (plus - minus) / (2 * h);
            double err = Math.abs(numeric - analytic);
            System.out.printf("%s direction %d: analytic %.6f numeric %.6f |diff| %.2e%n", label, trial, analytic,
                    numeric, err);
            assertTrue(err <= 1e-2 * Math.max(1, Math.abs(analytic)),
                    label + " direction " + trial + ": analytic " + analytic + " vs numeric " + numeric);
        }
    }

    /** The loss at θ + h·v. */
    private static double at(List<Param> params, Backend be, float[][] base, float[][] dir, double h,
                             DoubleSupplier loss) {
        for (int p = 0; p < base.length; p++) {
            float[] v = new float[base[p].length];
            for (int j = 0; j < v.length; j++) {
                v[j] = (float) (base[p][j] + h * dir[p][j]);
            }
            be.write(params.get(p).value(), v);
        }
        return loss.getAsDouble();
    }
}
