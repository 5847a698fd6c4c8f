package io.roundhouse.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.cpu.CpuBackend;
import io.roundhouse.worker.model.Param;
import io.roundhouse.worker.model.ParamStore;
import io.roundhouse.worker.train.AdamW;
import org.junit.jupiter.api.Test;

/** Global-norm clipping across parameters, decay only where asked, and a clear error on divergence. */
class AdamWClippingTest {

    @Test
    void clipsTheGlobalNormAndDecaysOnlyWeights() {
        Backend be = new CpuBackend();
        ParamStore ps = new ParamStore(be, 1);
        Param w = ps.constant("w", 1f, true, 2);
        Param b = ps.constant("b", 1f, false, 1);
        be.write(w.grad(), new float[] {3f, 0f});
        be.write(b.grad(), new float[] {4f});
        AdamW opt = new AdamW(be, ps, 0.9, 0.999, 1e-8, 0.5, 1.0);
        assertEquals(5.0, opt.gradNorm(), 1e-6);
        double before = opt.step(0.1);
        assertEquals(5.0, before, 1e-6, "step returns the norm before clipping");
        assertEquals(1.0, opt.gradNorm(), 1e-6, "gradients scaled to the clip norm");
        float[] g = ps.readGrad(w);
        assertEquals(0.6f, g[0], 1e-6f);
        assertEquals(0.8f, ps.readGrad(b)[0], 1e-6f);
        // First Adam step moves each coordinate with a non-zero gradient by lr (m̂/√v̂ = sign g);
        // w also decays by lr·wd·w, the bias does not; w[1] (zero gradient) only decays.
        float[] wv = ps.read(w);
        assertEquals(1f - 0.1f - 0.1f * 0.5f, wv[0], 1e-5f);
        assertEquals(1f - 0.1f * 0.5f, wv[1], 1e-5f);
        assertEquals(1f - 0.1f, ps.read(b)[0], 1e-5f);
    }

    @Test
    void aNonFiniteGradientStopsWithAMessage() {
        Backend be = new CpuBackend();
        ParamStore ps = new ParamStore(be, 1);
        Param w = ps.constant("w", 1f, true, 1);
        be.write(w.grad(), new float[] {Float.NaN});
        AdamW opt = new AdamW(be, ps, 0.9, 0.999, 1e-8, 0, 1.0);
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> opt.step(0.1));
        assertTrue(e.getMessage().contains("training diverged"), e.getMessage());
    }
}
