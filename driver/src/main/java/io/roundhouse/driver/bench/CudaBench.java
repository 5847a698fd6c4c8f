package io.roundhouse.driver.bench;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.cpu.CpuBackend;
import io.roundhouse.kernels.cuda.CudaBackend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.cuda.GemmKernel;
import io.roundhouse.kernels.HostBuffer;
import io.roundhouse.kernels.Precision;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.worker.config.ConfigKeys;
import io.roundhouse.worker.config.JobConfig;
import io.roundhouse.worker.model.LocalExchange;
import io.roundhouse.worker.model.ModelSpec;
import io.roundhouse.worker.model.MoeLayer;
import io.roundhouse.worker.model.ParamStore;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * {@code roundhouse bench cuda}: on GPU 0, GEMM TFLOP/s in fp32 and bf16 (tensor cores) at 4096³
 * and at the configured expert shapes, and one MoE layer's forward + backward time at the
 * configured shapes for a batch and for 4096 tokens, with the same layer on the CPU backend for the
 * batch. The baseline on the GPU is PyTorch, measured by {@code scripts/gpu/torch_bench.py} on the
 * same machine (the GPU check runs both).
 */
final class CudaBench {
    private final JobConfig config;
    private final double seconds;

    CudaBench(JobConfig config, double seconds) {
        this.config = config;
        this.seconds = seconds;
    }

    Map<String, Object> run(PrintWriter out) {
        String why = CudaBackend.unavailableReason();
        if (why != null) {
            throw new io.roundhouse.kernels.BackendException("bench cuda needs a GPU: " + why);
        }
        ModelSpec spec = ModelSpec.from(config, 784, 10);
        int batch = config.get(ConfigKeys.TRAIN_BATCH_SIZE);
        int rows = Math.max(1, batch * spec.topK() / spec.experts());
        int d = spec.dim();
        int f1 = spec.activation().preWidth(spec.expertHidden());
        Map<String, Object> report = new LinkedHashMap<>();
        try (CudaBackend gpu = new CudaBackend(0)) {
            report.put("device", gpu.name());
            out.printf("bench cuda on %s%n%-34s %12s %12s %12s%n", gpu.name(), "GEMM m x k x n", "fp32 TFLOP/s",
                    "bf16 TFLOP/s", "bf16 prefetch");
            List<Map<String, Object>> gemms = new ArrayList<>();
            int[][] shapes = {{4096, 4096, 4096}, {rows, d, f1}, {rows, spec.expertHidden(), d}, {4096, d, f1},
                {4096, spec.expertHidden(), d}};
            for (int[] s : shapes) {
                Map<String, Object> g = new LinkedHashMap<>();
                g.put("m", s[0]);
                g.put("k", s[1]);
                g.put("n", s[2]);
                StringBuilder line = new StringBuilder(String.format("%-34s", s[0] + " x " + s[1] + " x " + s[2]));
                for (GemmKernel kernel : GemmKernel.values()) {
                    double tflops = gemm(gpu, s[0], s[1], s[2], kernel);
                    g.put(switch (kernel) {
                        case FP32 -> "fp32TflopsPerSecond";
                        case BF16 -> "bf16TflopsPerSecond";
                        case BF16_PREFETCH -> "bf16PrefetchTflopsPerSecond";
                    }, tflops);
                    line.append(String.format(" %12.2f", tflops));
                }
                out.println(line);
                gemms.add(g);
            }
            report.put("gemm", gemms);
            report.put("copy", copies(gpu, out));
            List<Map<String, Object>> moe = new ArrayList<>();
            for (int tokens : new int[] {batch, 4096}) {
                double ms = moeLayer(gpu, spec.withPrecision(Precision.FP32), tokens);
                double bf16Ms = moeLayer(gpu, spec.withPrecision(Precision.BF16), tokens);
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("tokens", tokens);
                m.put("gpuForwardBackwardMs", ms);
                m.put("gpuBf16ForwardBackwardMs", bf16Ms);
                out.printf("MoE layer forward+backward, %d tokens (D=%d E=%d top-%d F=%d): GPU fp32 %.3f ms, bf16 "
                        + "%.3f ms", tokens, d, spec.experts(), spec.topK(), spec.expertHidden(), ms, bf16Ms);
                if (tokens == batch) {
                    try (CpuBackend cpu = new CpuBackend()) {
                        double cpuMs = moeLayer(cpu, spec.withPrecision(Precision.FP32), tokens);
                        m.put("cpuForwardBackwardMs", cpuMs);
                        out.printf(", CPU %.3f ms", cpuMs);
                    }
                }
                out.println();
                moe.add(m);
            }
            report.put("moeLayer", moe);
        }
        out.flush();
        return report;
    }

    /** TFLOP/s of c[m,n] = a[m,k]·b[k,n]. */
    private double gemm(CudaBackend gpu, int m, int k, int n, GemmKernel kernel) {
        Tensor a = random(gpu, m, k);
        Tensor b = random(gpu, k, n);
        Tensor c = gpu.allocate("c", DType.FLOAT32, m, n);
        return 2.0 * m * k * n * perSecond(gpu, seconds / 3, () -> gpu.matmul(c, a, b, false, false, kernel)) / 1e12;
    }

    /**
     * GB/s of 64 MiB copies between the GPU and host memory: the backend's page-locked host buffer
     * (what the token exchange and the gradient all-reduce stage through) against a Java array
     * (pageable: the driver stages it through its own buffer).
     */
    private Map<String, Object> copies(CudaBackend gpu, PrintWriter out) {
        int n = 16 << 20;
        Tensor t = random(gpu, n);
        HostBuffer pinned = gpu.allocateHost("bench.pinned", n);
        float[] pageable = new float[n];
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("bytes", 4L * n);
        double each = seconds / 4;
        r.put("deviceToPinnedGBps", 4.0 * n * perSecond(gpu, each, () -> gpu.read(t, pinned, 0)) / 1e9);
        r.put("pinnedToDeviceGBps", 4.0 * n * perSecond(gpu, each, () -> gpu.write(t, pinned, 0)) / 1e9);
        r.put("deviceToPageableGBps", 4.0 * n * perSecond(gpu, each, () -> gpu.read(t, pageable)) / 1e9);
        r.put("pageableToDeviceGBps", 4.0 * n * perSecond(gpu, each, () -> gpu.write(t, pageable)) / 1e9);
        out.printf("copies of 64 MiB, GB/s: device→pinned %.1f, pinned→device %.1f, device→float[] %.1f, "
                + "float[]→device %.1f%n", r.get("deviceToPinnedGBps"), r.get("pinnedToDeviceGBps"),
                r.get("deviceToPageableGBps"), r.get("pageableToDeviceGBps"));
        return r;
    }

    /** Milliseconds of one MoE layer forward + backward over {@code tokens} tokens (dropless). */
    private double moeLayer(Backend be, ModelSpec spec, int tokens) {
        MoeLayer layer = new MoeLayer(be, new ParamStore(be, 1), "moe", spec, new LocalExchange(spec.experts()), tokens);
        Tensor x = random(be, tokens, spec.dim());
        Tensor dy = random(be, tokens, spec.dim());
        return 1e3 / perSecond(be, seconds, () -> {
            layer.forward(x, 0);
            layer.backward(dy);
        });
    }

    /**
     * How many times a second {@code op} runs: the median of 5 trials sharing {@code budget}
     * seconds, after a warm-up, waiting for the GPU every 8 runs and at the end of each trial.
     */
    private static double perSecond(Backend be, double budget, Runnable op) {
        Runnable sync = be instanceof CudaBackend g ? g::synchronize : () -> { };
        op.run();
        sync.run();
        double[] trials = new double[5];
        for (int t = 0; t < trials.length; t++) {
            long start = System.nanoTime();
            long iters = 0;
            do {
                op.run();
                if (++iters % 8 == 0) {
                    sync.run();
                }
            } while (System.nanoTime() - start < budget / trials.length * 1e9);
            sync.run();
            trials[t] = iters / ((System.nanoTime() - start) / 1e9);
        }
        java.util.Arrays.sort(trials);
        return trials[trials.length / 2];
    }

    private static Tensor random(Backend be, int... shape) {
        Tensor t = be.allocate("r", DType.FLOAT32, shape);
        float[] v = new float[t.size()];
        Random r = new Random(1);
        for (int j = 0; j < v.length; j++) {
            v[j] = (float) r.nextGaussian();
        }
        be.write(t, v);
        return t;
    }
}
