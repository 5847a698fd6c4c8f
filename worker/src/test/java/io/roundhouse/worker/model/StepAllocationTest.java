package io.roundhouse.worker.model;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.roundhouse.kernels.Activation;
import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.GateMode;
import io.roundhouse.kernels.Precision;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.kernels.cpu.CpuBackend;
import com.sun.management.ThreadMXBean;
import java.lang.management.ManagementFactory;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * A CPU MoE layer's forward and backward, once every batch it sees has been seen (capacity-limited
 * routing, so the routed row counts differ from batch to batch), allocate at most 1 KB per step on
 * the calling thread and the backend's helper threads, the budget for a whole training
 * step. Allocation is counted, not timed. The bound holds before the JIT compiler has removed
 * short-lived temporaries (varargs, iterators: 30–420 bytes per step measured here, depending on
 * how much is compiled yet; compiled, the step allocates nothing). What it catches is the larger
 * per-step garbage this code once made: a row view per routed count (about 100 bytes each, a dozen
 * per step) or a message built before a check fails (700 KB).
 */
class StepAllocationTest {
    private static final int N = 512;
    private static final int D = 64;
    private static final int E = 8;

    private static final ThreadMXBean MX = (ThreadMXBean) ManagementFactory.getThreadMXBean();

    /** This thread and the backend's helpers (the step's threads). */
    private static long[] threads() {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t == Thread.currentThread() || t.getName().equals("roundhouse-cpu-rows"))
                .mapToLong(Thread::getId).toArray();
    }

    /** Their allocated bytes so far, one thread at a time (asking for all at once allocates an array). */
    private static long allocated(long[] threads) {
        long sum = 0;
        for (long id : threads) {
            sum += MX.getThreadAllocatedBytes(id);
        }
        return sum;
    }

    @Test
    void aWarmMoeLayerStepAllocatesNothing() {
        try (Backend be = new CpuBackend()) {
            ModelSpec spec = new ModelSpec(D, 2, D, 1, E, 2, 128, Activation.GELU, NormKind.LAYERNORM,
                    GateMode.TOPK_SOFTMAX, 1.25, 0, 0, 0.01, 0.001, 0, StnSpec.NONE, Precision.FP32,
                    RouterSpec.SOFTMAX, 0);
            ParamStore ps = new ParamStore(be, 5);
            MoeLayer moe = new MoeLayer(be, ps, "moe", spec, new LocalExchange(E), N);
            Random r = new Random(11);
            Tensor[] xs = new Tensor[3];
            for (int b = 0; b < xs.length; b++) {
                float[] v = new float[N * D];
                for (int j = 0; j < v.length; j++) {
                    v[j] = (float) r.nextGaussian();
                }
                xs[b] = be.allocate("x" + b, DType.FLOAT32, N, D);
                be.write(xs[b], v);
            }
            Tensor dy = be.allocate("dy", DType.FLOAT32, N, D);
            be.write(dy, new float[N * D]);
            int capacity = spec.capacity(N);
            for (int rep = 0; rep < 2; rep++) {  // every batch once: its views and scratch are made
                for (Tensor x : xs) {
                    moe.forward(x, capacity);
                    moe.backward(dy);
                }
            }
            long[] threads = threads();
            long before = allocated(threads);
            for (int rep = 0; rep < 5; rep++) {
                for (Tensor x : xs) {
                    moe.forward(x, capacity);
                    moe.backward(dy);
                }
            }
            double perStep = (allocated(threads) - before) / 15.0;
            assertTrue(perStep <= 1024, perStep + " bytes allocated per warm forward+backward step");
        }
    }
}
