package io.roundhouse.driver.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.roundhouse.kernels.Activation;
import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.Blas;
import io.roundhouse.kernels.cpu.CpuBackend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.worker.config.ConfigKeys;
import io.roundhouse.worker.config.JobConfig;
import java.io.PrintWriter;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Kernel throughput on the CPU backend. Baselines in the same run: sgemm at 1024³ (the machine's
 * BLAS peak here) and sgemm at the expert GEMM shapes of the configured model. Measured: the
 * grouped expert FFN forward+backward at the configured shapes (B·K token copies spread evenly
 * over E experts), as GFLOP/s counting only the GEMM flops, and its ratio to both baselines.
 */
final class KernelBench {
    private final int d;
    private final int f;
    private final int e;
    private final int rowsTotal;
    private final Activation act;
    private final double seconds;

    record Report(Map<String, Object> values) {
        String toJson() throws java.io.IOException {
            return new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(values) + "\n";
        }
    }

    KernelBench(JobConfig c, double seconds) {
        this.d = c.get(ConfigKeys.MODEL_DIM);
        this.f = c.get(ConfigKeys.MODEL_EXPERT_HIDDEN);
        this.e = c.get(ConfigKeys.MODEL_EXPERTS);
        this.rowsTotal = c.get(ConfigKeys.TRAIN_BATCH_SIZE) * c.get(ConfigKeys.MODEL_TOP_K);
        this.act = c.get(ConfigKeys.MODEL_ACTIVATION);
        this.seconds = seconds;
    }

    Report run(PrintWriter out) {
        Map<String, Object> v = new LinkedHashMap<>();
        v.put("blas", Blas.implementation());
        v.put("cores", Runtime.getRuntime().availableProcessors());
        out.printf("BLAS: %s (%s), %d cores%n", Blas.implementation(), Blas.isNative() ? "native" : "PURE JAVA",
                Runtime.getRuntime().availableProcessors());

        double peak = sgemmRate(1024, 1024, 1024);
        v.put("sgemm1024GflopsPerSec", peak);
        out.printf("%-58s %8.1f GFLOP/s%n", "sgemm 1024x1024x1024", peak);

        int rowsPerExpert = Math.max(1, rowsTotal / e);
        int f1 = act.preWidth(f);
        double up = sgemmRate(rowsPerExpert, f1, d);
        double down = sgemmRate(rowsPerExpert, d, f);
        // The expert GEMMs' mix: the flop-weighted harmonic mean of the two forward shapes.
        double flopsUp = 2.0 * rowsPerExpert * d * f1;
        double flopsDown = 2.0 * rowsPerExpert * f * d;
        double expertShapes = (flopsUp + flopsDown) / (flopsUp / up + flopsDown / down);
        v.put("sgemmExpertUpGflopsPerSec", up);
        v.put("sgemmExpertDownGflopsPerSec", down);
        v.put("sgemmExpertShapesGflopsPerSec", expertShapes);
        out.printf("%-58s %8.1f GFLOP/s%n", String.format("sgemm expert up   %dx%dx%d (rows x F1 x D)", rowsPerExpert, f1, d), up);
        out.printf("%-58s %8.1f GFLOP/s%n", String.format("sgemm expert down %dx%dx%d (rows x D x F)", rowsPerExpert, d, f), down);
        out.printf("%-58s %8.1f GFLOP/s%n", "sgemm at the expert shapes (flop-weighted)", expertShapes);

        double ffn = expertFfnRate(rowsPerExpert);
        v.put("expertFfnFwdBwdGflopsPerSec", ffn);
        v.put("ratioToExpertShapeSgemm", ffn / expertShapes);
        v.put("ratioToSgemm1024", ffn / peak);
        out.printf("%-58s %8.1f GFLOP/s%n", String.format("grouped expert FFN fwd+bwd (%s, E=%d, %d rows, D=%d, F=%d)",
                act.name().toLowerCase(), e, rowsPerExpert * e, d, f), ffn);
        out.printf("ratio to sgemm at expert shapes: %.2f   ratio to sgemm 1024^3: %.2f%n", ffn / expertShapes, ffn / peak);
        return new Report(v);
    }

    private double sgemmRate(int m, int n, int k) {
        return sgemmRate(seconds, m, n, k);
    }

    /** sgemm GFLOP/s at C[m,n] = A[m,k]·B[k,n], measured as {@link #rate} does. */
    static double sgemmRate(double seconds, int m, int n, int k) {
        float[] a = random(m * k);
        float[] b = random(k * n);
        float[] c = new float[m * n];
        double flops = 2.0 * m * n * k;
        return rate(seconds, flops, () -> Blas.sgemm(false, false, m, n, k, 1f, a, 0, k, b, 0, n, 0f, c, 0, n));
    }

    private double expertFfnRate(int rowsPerExpert) {
        int m = rowsPerExpert * e;
        int f1 = act.preWidth(f);
        int[] offsets = new int[e + 1];
        for (int j = 0; j < e; j++) {
            offsets[j + 1] = offsets[j] + rowsPerExpert;
        }
        try (Backend be = new CpuBackend()) {
            Tensor x = tensor(be, m, d);
            Tensor w1 = tensor(be, e, d, f1);
            Tensor b1 = tensor(be, e, f1);
            Tensor w2 = tensor(be, e, f, d);
            Tensor b2 = tensor(be, e, d);
            Tensor y = tensor(be, m, d);
            Tensor a = tensor(be, m, f1);
            Tensor h = tensor(be, m, f);
            Tensor dy = tensor(be, m, d);
            Tensor dx = tensor(be, m, d);
            Tensor dw1 = tensor(be, e, d, f1);
            Tensor db1 = tensor(be, e, f1);
            Tensor dw2 = tensor(be, e, f, d);
            Tensor db2 = tensor(be, e, d);
            Tensor dh = tensor(be, m, f);
            Tensor da = tensor(be, m, f1);
            // forward: 2 GEMMs; backward: 4 GEMMs of the same sizes.
            double flops = 3 * (2.0 * m * d * f1 + 2.0 * m * f * d);
            return rate(seconds, flops, () -> {
                be.expertFfnForward(y, a, h, x, w1, b1, w2, b2, offsets, act);
                be.expertFfnBackward(dx, dw1, db1, dw2, db2, dy, x, a, h, w1, w2, offsets, act, dh, da);
            });
        }
    }

    static Tensor tensor(Backend be, int... shape) {
        Tensor t = be.allocate("bench", DType.FLOAT32, shape);
        SplittableRandom r = new SplittableRandom(shape.length * 31L + t.size());
        float[] v = new float[t.size()];
        for (int j = 0; j < v.length; j++) {
            v[j] = (float) (r.nextDouble() - 0.5) * 0.1f;
        }
        be.write(t, v);
        return t;
    }

    private static float[] random(int n) {
        SplittableRandom r = new SplittableRandom(n);
        float[] v = new float[n];
        for (int j = 0; j < n; j++) {
            v[j] = (float) (r.nextDouble() - 0.5);
        }
        return v;
    }

    /** GFLOP/s: the median of 5 timed trials, each at least seconds/5 long, after a warm-up trial. */
    static double rate(double seconds, double flopsPerCall, Runnable call) {
        double trialSeconds = seconds / 5;
        double[] rates = new double[6];
        for (int trial = 0; trial < rates.length; trial++) {
            long calls = 0;
            long start = System.nanoTime();
            long elapsed;
            do {
                call.run();
                calls++;
                elapsed = System.nanoTime() - start;
            } while (elapsed < trialSeconds * 1e9);
            rates[trial] = flopsPerCall * calls / (elapsed / 1e9) / 1e9;
        }
        double[] timed = java.util.Arrays.copyOfRange(rates, 1, rates.length); // trial 0 warms up
        java.util.Arrays.sort(timed);
        return timed[timed.length / 2];
    }
}
