package io.roundhouse.kernels.cpu;

import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * The rational tanh of the CPU backend against Math.tanh over the whole float range that matters,
 * and its float exp against Math.exp.
 */
class FastTanhTest {
    @Test
    void closeToMathTanh() {
        double worst = 0;
        float at = 0;
        for (float u = -20f; u <= 20f; u += 1e-4f) {
            double err = Math.abs(CpuActivations.tanh(u) - Math.tanh(u));
            if (err > worst) {
                worst = err;
                at = u;
            }
        }
        System.out.printf("rational tanh: worst |error| %.3e at %f%n", worst, at);
        assertTrue(worst < 5e-7, "worst error " + worst + " at " + at);
        assertTrue(CpuActivations.tanh(0f) == 0f && CpuActivations.tanh(-3f) == -CpuActivations.tanh(3f), "odd, exact at 0");
    }

    @Test
    void floatExpCloseToMathExp() {
        double worst = 0;
        float at = 0;
        for (float x = -87f; x <= 88f; x += 3e-4f) {
            double want = Math.exp(x);
            double err = Math.abs(CpuActivations.exp(x) - want) / want;
            if (err > worst) {
                worst = err;
                at = x;
            }
        }
        System.out.printf("float exp: worst relative error %.3e at %f%n", worst, at);
        assertTrue(worst < 2.5e-7, "worst relative error " + worst + " at " + at);
        assertTrue(CpuActivations.exp(0f) == 1f, "exp(0) = 1");
        assertTrue(CpuActivations.exp(-1000f) > 0f && CpuActivations.exp(-1000f) < 1e-37f, "clamped below, not 0 or NaN");
        assertTrue(Float.isFinite(CpuActivations.exp(1000f)), "clamped above");
        assertTrue(Float.isNaN(CpuActivations.exp(Float.NaN)), "NaN stays NaN");
    }
}
