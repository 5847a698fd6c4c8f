package io.roundhouse.worker;

import static io.roundhouse.worker.TensorFixtures.read;
import static io.roundhouse.worker.TensorFixtures.tensor;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.roundhouse.kernels.Activation;
import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.cpu.CpuBackend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.GateMode;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.worker.model.LocalExchange;
import io.roundhouse.worker.model.ModelSpec;
import io.roundhouse.worker.model.MoeLayer;
import io.roundhouse.worker.model.NormKind;
import io.roundhouse.worker.model.ParamStore;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * DESIGN invariant: an MoE layer with one expert, top-1, no capacity limit and no z-loss is a dense
 * FFN — same outputs, same input gradient, same expert-weight gradients, and a zero router
 * gradient (the gate is identically 1).
 */
class OneExpertEqualsDenseTest {

    @ParameterizedTest
    @EnumSource(Activation.class)
    void oneExpertMoeIsADenseFfn(Activation act) {
        int n = 13;
        int d = 10;
        int f = 7;
        int f1 = act.preWidth(f);
        Backend be = new CpuBackend();
        ModelSpec spec = new ModelSpec(d, 2, d, 1, 1, 1, f, act, NormKind.LAYERNORM, GateMode.TOPK_SOFTMAX, 0,
                0, 0, 0.01, 0);
        ParamStore ps = new ParamStore(be, 3);
        MoeLayer moe = new MoeLayer(be, ps, "moe", spec, new LocalExchange(1), n);
        Random r = new Random(1);
        float[] x = randn(r, n * d);
        float[] dy = randn(r, n * d);
        be.write(moe.b1.value(), randn(r, f1));
        be.write(moe.b2.value(), randn(r, d));
        Tensor tx = tensor(be, x, n, d);
        float[] yMoe = read(be, moe.forward(tx, 0));
        float[] dxMoe = read(be, moe.backward(tensor(be, dy, n, d)));

        // The dense FFN with the same weights, from the same ops.
        Tensor w1 = tensor(be, ps.read(moe.w1), d, f1);
        Tensor b1 = tensor(be, ps.read(moe.b1), f1);
        Tensor w2 = tensor(be, ps.read(moe.w2), f, d);
        Tensor b2 = tensor(be, ps.read(moe.b2), d);
        Tensor a = be.allocate("a", DType.FLOAT32, n, f1);
        Tensor h = be.allocate("h", DType.FLOAT32, n, f);
        Tensor y = be.allocate("y", DType.FLOAT32, n, d);
        be.linearForward(a, tx, w1, b1);
        be.activationForward(h, a, act);
        be.linearForward(y, h, w2, b2);
        Tensor dh = be.allocate("dh", DType.FLOAT32, n, f);
        Tensor da = be.allocate("da", DType.FLOAT32, n, f1);
        Tensor dx = be.allocate("dx", DType.FLOAT32, n, d);
        Tensor dw1 = be.allocate("dw1", DType.FLOAT32, d, f1);
        Tensor db1 = be.allocate("db1", DType.FLOAT32, f1);
        Tensor dw2 = be.allocate("dw2", DType.FLOAT32, f, d);
        Tensor db2 = be.allocate("db2", DType.FLOAT32, d);
        be.linearBackward(dh, dw2, db2, tensor(be, dy, n, d), h, w2);
        be.activationBackward(da, dh, a, act);
        be.linearBackward(dx, dw1, db1, da, tx, w1);

        same("output", read(be, y), yMoe);
        same("dx", read(be, dx), dxMoe);
        same("dW1", read(be, dw1), ps.readGrad(moe.w1));
        same("db1", read(be, db1), ps.readGrad(moe.b1));
        same("dW2", read(be, dw2), ps.readGrad(moe.w2));
        same("db2", read(be, db2), ps.readGrad(moe.b2));
        same("router gradient", new float[d], ps.readGrad(moe.routerWeights()));
        assertEquals(0, moe.dropped());
    }

    private static void same(String what, float[] want, float[] got) {
        double worst = 0;
        for (int j = 0; j < want.length; j++) {
            worst = Math.max(worst, Math.abs(want[j] - got[j]));
        }
        System.out.printf("one expert vs dense %-16s worst |diff| %.3e%n", what, worst);
        assertEquals(0, worst, 1e-6, what);
    }

    private static float[] randn(Random r, int n) {
        float[] v = new float[n];
        for (int j = 0; j < n; j++) {
            v[j] = (float) r.nextGaussian();
        }
        return v;
    }
}
