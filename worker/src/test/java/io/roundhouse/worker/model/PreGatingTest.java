package io.roundhouse.worker.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.roundhouse.kernels.Activation;
import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.GateMode;
import io.roundhouse.kernels.Precision;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.kernels.cpu.CpuBackend;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Two MoE layers, the second pre-gated by the first's input: the second layer routes by what its
 * router makes of x (not of the first layer's output), and dL/dx carries the second router's
 * gradient through x: checked against finite differences of the stack, the router weights large
 * enough that the routing path is a sizeable share of the gradient.
 */
class PreGatingTest {
    private static final int N = 7;
    private static final int D = 6;
    private static final int E = 4;

    @Test
    void theNextLayersRouterReadsThisLayersInputAndItsGradientComesBack() {
        Backend be = new CpuBackend();
        ModelSpec spec = new ModelSpec(D, 2, D, 2, E, 2, 5, Activation.GELU, NormKind.LAYERNORM, GateMode.TOPK_SOFTMAX,
                0, 0, 0, 0, 0, 0, StnSpec.NONE, Precision.FP32, RouterSpec.SOFTMAX.withPreGating(true), 0);
        ParamStore ps = new ParamStore(be, 5);
        MoeLayer l0 = new MoeLayer(be, ps, "l0", spec, new LocalExchange(E), N);
        MoeLayer l1 = new MoeLayer(be, ps, "l1", spec, new LocalExchange(E), N);
        l0.preGate(l1);
        Random r = new Random(3);
        for (Param p : ps.all()) {
            float[] v = ps.read(p);
            double scale = p.name().endsWith("router.w") ? 1.5 : 0.5;
            for (int j = 0; j < v.length; j++) {
                v[j] = (float) (r.nextGaussian() * scale);
            }
            be.write(p.value(), v);
        }
        float[] x = new float[N * D];
        float[] c = new float[N * D];
        for (int j = 0; j < x.length; j++) {
            x[j] = (float) r.nextGaussian();
            c[j] = (float) r.nextGaussian();
        }
        Tensor tx = be.allocate("x", DType.FLOAT32, N, D);
        Tensor dy = be.allocate("dy", DType.FLOAT32, N, D);
        be.write(dy, c);
        be.write(tx, x);
        l1.forward(l0.forward(tx, 0), 0);
        float[] dx = new float[N * D];
        be.read(l0.backward(l1.backward(dy)), dx);
        // The routing path alone: the same stack's gradient with the second router's input gradient left out.
        float[] routerPart = new float[N * D];
        be.read(l1.routerInputGradient(), routerPart);
        double routerNorm = 0;
        for (float v : routerPart) {
            routerNorm += v * v;
        }
        double worst = 0;
        double h = 1e-2;
        for (int j = 0; j < x.length; j++) {
            float[] p = x.clone();
            float[] m = x.clone();
            p[j] += (float) h;
            m[j] -= (float) h;
            double numeric = (loss(be, l0, l1, tx, p, c) - loss(be, l0, l1, tx, m, c)) / (2 * h);
            worst = Math.max(worst, Math.abs(numeric - dx[j]));
            assertEquals(numeric, dx[j], 5e-3 * Math.max(1, Math.abs(numeric)), "dL/dx[" + j + "]");
        }
        System.out.printf("pre-gated stack dL/dx: worst |analytic - finite difference| %.2e; the second router's "
                + "share |dL/dx| %.3f%n", worst, Math.sqrt(routerNorm));
        assertTrue(Math.sqrt(routerNorm) > 0.05, "the routing path should matter in this test");
    }

    private static double loss(Backend be, MoeLayer l0, MoeLayer l1, Tensor tx, float[] x, float[] c) {
        be.write(tx, x);
        float[] y = new float[N * D];
        be.read(l1.forward(l0.forward(tx, 0), 0), y);
        double s = 0;
        for (int j = 0; j < y.length; j++) {
            s += (double) c[j] * y[j];
        }
        return s;
    }
}
