package io.roundhouse.kernels.cpu;

import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The rational tanh of the CPU backend against Math.tanh over the whole float range that matters. */
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
}
