package io.roundhouse.kernels.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.roundhouse.kernels.Activation;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.GateMode;
import io.roundhouse.kernels.Precision;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.kernels.cpu.CpuBackend;
import io.roundhouse.worker.model.BackendCheck;
import io.roundhouse.worker.model.Batch;
import io.roundhouse.worker.model.LmSpec;
import io.roundhouse.worker.model.MoeTransformer;
import io.roundhouse.worker.model.Hyper;
import io.roundhouse.worker.model.ModelSpec;
import io.roundhouse.worker.model.MoeClassifier;
import io.roundhouse.worker.model.Ninformer;
import io.roundhouse.worker.model.NinformerSpec;
import io.roundhouse.worker.model.NormKind;
import io.roundhouse.worker.model.StepStats;
import io.roundhouse.worker.model.StnSpec;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * Without a GPU (in CI): whole training steps of the model on the CUDA backend over the kernels'
 * launch checker ({@link LaunchCheckDevice}), so every launch the model's layers make, in the
 * order and with the shapes they make them, is checked against its kernel's C signature, and the
 * backend's Java code runs end to end. Nothing is computed: the numbers are a GPU run's to check.
 */
class CudaModelLaunchTest {
    private final LaunchCheckDevice dev = new LaunchCheckDevice(Path.of("../kernels/src/main/cuda"));

    /**
     * The start-up check's every launch is well formed, and it covers what it claims: each of its
     * three models (fp32 GELU/LayerNorm, bf16 SwiGLU/RMSNorm, a Self-Tuning Network) and AdamW
     * launch their kernels and are compared (the checker computes nothing, so every comparison
     * the check makes reports a difference: one missing is a model or step the check skipped).
     */
    @Test
    void theStartUpCheckRunsOnTheCudaBackend() {
        List<String> differences;
        try (CpuBackend cpu = new CpuBackend(); CudaBackend cuda = new CudaBackend(dev)) {
            differences = BackendCheck.differences(cpu, cuda);
        }
        assertEquals("[]", dev.problems.toString(), String.join("\n", dev.problems));
        // fp32 and bf16 GEMMs, norms, the router and its losses, routing, dropout and jitter, the STN
        // responses, the loss and AdamW (the activations run inside the GEMM kernels)
        for (String kernel : new String[] {"rh_sgemm", "rh_gemm_bf16", "rh_norm_forward", "rh_norm_backward_dx",
            "rh_norm_backward_params", "rh_gate_forward", "rh_gate_backward", "rh_router_loss_backward",
            "rh_plan_fill", "rh_unpermute_forward", "rh_unpermute_backward_rows", "rh_dropout_rows", "rh_jitter",
            "rh_multiply", "rh_sum_row_products", "rh_cross_entropy_forward", "rh_cross_entropy_backward",
            "rh_adamw"}) {
            assertTrue(dev.launched.containsKey(kernel), kernel + " launched by the check: " + dev.launched.keySet());
        }
        for (String compared : new String[] {"fp32 gelu/layernorm: ", "bf16 swiglu/rmsnorm: ",
            "fp32 gelu/layernorm STN: the perturbation's gradient", "AdamW w", "AdamW m", "AdamW v"}) {
            assertTrue(differences.stream().anyMatch(d -> d.startsWith(compared)), "the check compares " + compared
                    + String.join("\n", differences));
        }
    }

    @Test
    void aSelfTuningWeightStepWithEveryResponse() {
        int n = 10;
        // augment.shift acts on the data, not the model
        List<Hyper> tuned = MoeClassifier.TUNABLE.stream().filter(x -> x != Hyper.AUGMENT_SHIFT).toList();
        int h = tuned.size();
        StnSpec stn = new StnSpec(tuned, Set.copyOf(MoeClassifier.STN_LAYERS));
        ModelSpec spec = new ModelSpec(12, 4, 8, 2, 4, 2, 6, Activation.SWIGLU, NormKind.RMSNORM,
                GateMode.SOFTMAX_TOPK, 1.0, 0.2, 0.2, 0.05, 0.01, 0.1, stn, Precision.BF16);
        try (CudaBackend cuda = new CudaBackend(dev)) {
            MoeClassifier model = MoeClassifier.local(cuda, spec, 11, n);
            Tensor x = cuda.allocate("x", DType.FLOAT32, n, 12);
            Tensor y = cuda.allocate("y", DType.INT32, n);
            int[] labels = new int[n];
            float[][] values = new float[h][n];
            for (float[] v : values) {
                Arrays.fill(v, 0.1f);
            }
            for (boolean train : new boolean[] {true, false}) {
                model.params().zeroGrads();
                model.perturbation().set(n, new float[n * h], train ? values : null);
                model.forward(x, y, labels, train, 7, 3, new StepStats(2, 4));
                model.backward();
            }
        }
        assertEquals("[]", dev.problems.toString(), String.join("\n", dev.problems));
        for (String kernel : new String[] {"rh_dropout_rows", "rh_jitter", "rh_multiply", "rh_sum_row_products",
            "rh_gemm_bf16", "rh_router_loss_backward"}) {
            assertTrue(dev.launched.containsKey(kernel), kernel + " ran: " + dev.launched.keySet());
        }
    }

    @Test
    void aLanguageModelStep() {
        int seqs = 2;
        int t = 8;
        // A Self-Tuning Network on every layer the LM has, and the output tied to the embedding.
        StnSpec stn = new StnSpec(MoeTransformer.TUNABLE, Set.copyOf(MoeTransformer.STN_LAYERS));
        ModelSpec moe = new ModelSpec(256, 256, 16, 2, 4, 2, 8, Activation.SWIGLU, NormKind.RMSNORM,
                GateMode.TOPK_SOFTMAX, 0, 0, 0.1, 0.01, 0.001, 0.1, stn, Precision.FP32);
        LmSpec spec = new LmSpec(moe, t, 4, 2, 10000, 2, 12, true, 0.1, true);
        int rows = seqs * t;
        int h = MoeTransformer.TUNABLE.size();
        try (CudaBackend cuda = new CudaBackend(dev)) {
            MoeTransformer model = MoeTransformer.local(cuda, spec, 11, seqs);
            float[][] rates = new float[h][rows];
            for (float[] r : rates) {
                Arrays.fill(r, 0.1f);
            }
            model.perturbation().set(rows, new float[rows * h], rates);
            Tensor in = cuda.allocate("in", DType.INT32, seqs * t);
            Tensor out = cuda.allocate("out", DType.INT32, seqs * t);
            Batch batch = new Batch() {
                public Tensor inputs() {
                    return in;
                }

                public Tensor targets() {
                    return out;
                }

                public int[] hostTargets() {
                    return new int[seqs * t];
                }
            };
            for (boolean train : new boolean[] {true, false}) {
                model.params().zeroGrads();
                model.forward(batch, seqs, train, 7, 3, 0, new StepStats(model.moeLayers(), 4));
                model.backward(seqs);
            }
        }
        assertEquals("[]", dev.problems.toString(), String.join("\n", dev.problems));
        for (String kernel : new String[] {"rh_rope", "rh_sigmoid_gate_forward", "rh_sigmoid_gate_backward",
            "rh_attention_row_dots"}) {
            assertTrue(dev.launched.containsKey(kernel), kernel + " ran: " + dev.launched.keySet());
        }
    }

    /** A NiNformer step, MoE and dense blocks, fp32 and bf16: patches, transposes, means and the gating unit. */
    @Test
    void aNinformerStep() {
        int images = 3;
        for (Precision precision : Precision.values()) {
            ModelSpec moe = new ModelSpec(28 * 28, 10, 16, 2, 4, 2, 8, Activation.GELU, NormKind.LAYERNORM,
                    GateMode.TOPK_SOFTMAX, 1.25, 0.1, 0.1, 0.01, 0.001, 0.1, StnSpec.NONE, precision);
            NinformerSpec spec = new NinformerSpec(moe, 1, 28, 7, 8, 24, 2, 12);
            try (CudaBackend cuda = new CudaBackend(dev)) {
                Ninformer model = Ninformer.local(cuda, spec, 11, images);
                Tensor x = cuda.allocate("x", DType.FLOAT32, images, 28 * 28);
                Tensor y = cuda.allocate("y", DType.INT32, images);
                for (boolean train : new boolean[] {true, false}) {
                    model.params().zeroGrads();
                    model.forward(x, y, new int[images], train, 7, 3, 0, new StepStats(model.moeLayers(), 4));
                    model.backward(images);
                }
            }
        }
        // Adversarial training's and the Self-Tuning Network's paths: the input gradient (through input
        // dropout and the patch cut), a TRADES pair batch, per-patch residual dropout rates.
        ModelSpec moe = new ModelSpec(28 * 28, 10, 16, 2, 4, 2, 8, Activation.GELU, NormKind.LAYERNORM,
                GateMode.TOPK_SOFTMAX, 0, 0.1, 0.1, 0.01, 0.001, 0.1,
                new StnSpec(Ninformer.TUNABLE, java.util.Set.of("embed", "router", "experts")), Precision.FP32);
        NinformerSpec spec = new NinformerSpec(moe, 1, 28, 7, 8, 24, 1, 12);
        try (CudaBackend cuda = new CudaBackend(dev)) {
            Ninformer model = Ninformer.local(cuda, spec, 11, 2 * images);
            Tensor x = cuda.allocate("x", DType.FLOAT32, 2 * images, 28 * 28);
            Tensor y = cuda.allocate("y", DType.INT32, 2 * images);
            int rows = 2 * images * spec.patches();
            int h = Ninformer.TUNABLE.size();
            float[][] values = new float[h][rows];
            for (float[] v : values) {
                java.util.Arrays.fill(v, 0.05f);
            }
            model.perturbation().set(rows / 2, new float[rows / 2 * h], values);  // a perturbation per patch row
            model.params().zeroGrads();
            model.forward(x.rows(images), y.rows(images), new int[images], true, 7, 3, 0,
                    new StepStats(model.moeLayers(), 4));
            model.backwardToInput(images);
            model.perturbation().set(rows, new float[rows * h], values);
            model.loss().trades(6.0);
            model.forward(x, y, new int[2 * images], true, 7, 4, 0, new StepStats(model.moeLayers(), 4));
            model.backward(images);
            model.loss().crossEntropy();
        }
        assertEquals("[]", dev.problems.toString(), String.join("\n", dev.problems));
        for (String kernel : new String[] {"rh_patches_forward", "rh_patches_backward", "rh_transpose_groups",
            "rh_mean_groups_forward", "rh_mean_groups_backward", "rh_dropout_rows"}) {
            assertTrue(dev.launched.containsKey(kernel), kernel + " ran: " + dev.launched.keySet());
        }
    }
}
