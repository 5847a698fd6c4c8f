package io.roundhouse.kernels;

import static io.roundhouse.kernels.OpTestSupport.assertClose;
import static io.roundhouse.kernels.OpTestSupport.numericGrad;
import static io.roundhouse.kernels.OpTestSupport.rounded;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

/**
 * The transformer's ops on the CPU against plain loops in double, and their backwards against
 * central finite differences of those loops: rotary position embedding, causal attention (with
 * grouped-query heads, a query shorter than its keys, more queries than one tile, dropout) and
 * the attention output gate.
 */
class TransformerOpsTest {
    private static final double GRAD_TOL = 2e-3;

    @ParameterizedTest(name = "n={0} heads={1} dh={2} period={3} firstPos={4}")
    @CsvSource({"1, 1, 2, 1, 0", "6, 2, 8, 3, 0", "5, 3, 4, 100, 17", "4, 1, 16, 4, 1000"})
    void rope(int n, int heads, int dh, int period, int firstPos) {
        OpTestSupport s = new OpTestSupport(n * 31L + dh);
        int row = heads * dh;
        double theta = 10000;
        double[] x = rounded(s.randn(n * row, 1));
        double[] dy = rounded(s.randn(n * row, 1));
        Tensor tx = s.tensor("x", x, n, row);
        Tensor ty = s.poisoned("y", n, row);
        s.be.rope(ty, tx, dh, period, firstPos, (float) theta, false);
        String tag = "rope " + n + "x" + heads + "x" + dh + " @" + firstPos;
        assertClose(tag + " fwd", Ref.rope(x, n, row, dh, period, firstPos, theta, false), s.read(ty), 1e-5);
        // Backward is the inverse rotation applied to dy (in place here, as the op allows).
        Tensor tdx = s.tensor("dx", dy, n, row);
        s.be.rope(tdx, tdx, dh, period, firstPos, (float) theta, true);
        assertClose(tag + " bwd", numericGrad(v -> Ref.rope(v, n, row, dh, period, firstPos, theta, false), x.clone(),
                dy), s.read(tdx), GRAD_TOL);
        s.be.rope(ty, ty, dh, period, firstPos, (float) theta, true);
        assertClose(tag + " inverse∘forward", x, s.read(ty), 1e-5);
    }

    @ParameterizedTest(name = "B={0} Tq={1} Tk={2} H={3} Hkv={4} dh={5} dropout={6}")
    @CsvSource({
        "1, 1, 1, 1, 1, 2, 0",
        "2, 5, 5, 2, 2, 4, 0",
        "2, 4, 4, 4, 2, 3, 0",      // grouped-query: two query heads per key/value head
        "1, 3, 7, 2, 1, 4, 0",      // queries at the end of a longer key sequence (a cache)
        "1, 70, 70, 1, 1, 4, 0",    // more than one tile of queries
        "2, 6, 6, 2, 1, 4, 0.3",    // attention dropout
    })
    void attention(int batch, int tq, int tk, int heads, int kvHeads, int dh, double rate) {
        OpTestSupport s = new OpTestSupport(batch * 7L + tq * 13L + tk + heads * 3L + dh);
        double scale = 1 / Math.sqrt(dh);
        long seed = 99;
        long stream = 5;
        long firstSequence = 3;
        double[] q = rounded(s.randn(batch * tq * heads * dh, 1));
        double[] k = rounded(s.randn(batch * tk * kvHeads * dh, 1));
        double[] v = rounded(s.randn(batch * tk * kvHeads * dh, 1));
        double[] dOut = rounded(s.randn(batch * tq * heads * dh, 1));
        double[] rates = rate > 0 ? new double[batch * tq] : null;
        if (rates != null) {
            for (int r = 0; r < batch * tq; r++) {
                rates[r] = r % 3 == 0 ? 0 : rate * r / (batch * tq);  // some rows keep everything
            }
        }
        Tensor tq_ = s.tensor("q", q, batch * tq, heads * dh);
        Tensor tk_ = s.tensor("k", k, batch * tk, kvHeads * dh);
        Tensor tv = s.tensor("v", v, batch * tk, kvHeads * dh);
        Tensor tr = rates == null ? null : s.tensor("rates", rates, batch * tq);
        Tensor out = s.poisoned("out", batch * tq, heads * dh);
        Tensor lse = s.poisoned("lse", batch * tq, heads);
        s.be.attentionForward(out, lse, tq_, tk_, tv, batch, heads, kvHeads, (float) scale, tr, seed, stream,
                firstSequence);
        String tag = "attention B" + batch + " Tq" + tq + " Tk" + tk + " H" + heads + "/" + kvHeads + " dh" + dh
                + (rate > 0 ? " dropout" : "");
        double[] wantLse = new double[batch * tq * heads];
        assertClose(tag + " fwd", Ref.attention(q, k, v, batch, tq, tk, heads, kvHeads, dh, scale, rates, seed,
                stream, firstSequence, wantLse), s.read(out), 1e-5);
        assertClose(tag + " lse", wantLse, s.read(lse), 1e-5);

        Tensor dq = s.poisoned("dq", batch * tq, heads * dh);
        Tensor dk = s.poisoned("dk", batch * tk, kvHeads * dh);
        Tensor dv = s.poisoned("dv", batch * tk, kvHeads * dh);
        s.be.attentionBackward(dq, dk, dv, s.tensor("dOut", dOut, batch * tq, heads * dh), out, lse, tq_, tk_, tv,
                batch, heads, kvHeads, (float) scale, tr, seed, stream, firstSequence);
        assertClose(tag + " dq", numericGrad(x -> Ref.attention(x, k, v, batch, tq, tk, heads, kvHeads, dh, scale,
                rates, seed, stream, firstSequence, null), q.clone(), dOut), s.read(dq), GRAD_TOL);
        assertClose(tag + " dk", numericGrad(x -> Ref.attention(q, x, v, batch, tq, tk, heads, kvHeads, dh, scale,
                rates, seed, stream, firstSequence, null), k.clone(), dOut), s.read(dk), GRAD_TOL);
        assertClose(tag + " dv", numericGrad(x -> Ref.attention(q, k, x, batch, tq, tk, heads, kvHeads, dh, scale,
                rates, seed, stream, firstSequence, null), v.clone(), dOut), s.read(dv), GRAD_TOL);
    }

    @Test
    void oneQueryAgainstACacheIsThatRowOfTheFullAttention() {
        OpTestSupport s = new OpTestSupport(4);
        int t = 9;
        int heads = 2;
        int dh = 4;
        double[] q = rounded(s.randn(t * heads * dh, 1));
        double[] k = rounded(s.randn(t * heads * dh, 1));
        double[] v = rounded(s.randn(t * heads * dh, 1));
        Tensor tq = s.tensor("q", q, t, heads * dh);
        Tensor tk = s.tensor("k", k, t, heads * dh);
        Tensor tv = s.tensor("v", v, t, heads * dh);
        Tensor full = s.poisoned("full", t, heads * dh);
        Tensor lse = s.poisoned("lse", t, heads);
        s.be.attentionForward(full, lse, tq, tk, tv, 1, heads, heads, 0.5f, null, 0, 0, 0);
        double[] all = s.read(full);
        for (int pos = 0; pos < t; pos++) {
            Tensor one = s.poisoned("one", 1, heads * dh);
            Tensor lse1 = s.poisoned("lse1", 1, heads);
            s.be.attentionForward(one, lse1, tq.rows(pos, 1), tk.rows(pos + 1), tv.rows(pos + 1), 1, heads, heads, 0.5f,
                    null, 0, 0, 0);
            double[] got = s.read(one);
            for (int c = 0; c < heads * dh; c++) {
                assertEquals(all[pos * heads * dh + c], got[c], 1e-6, "position " + pos + " element " + c);
            }
        }
    }

    @Test
    void attentionRejectsBadShapes() {
        OpTestSupport s = new OpTestSupport(1);
        Tensor q = s.be.allocate("q", DType.FLOAT32, 4, 8);
        Tensor k = s.be.allocate("k", DType.FLOAT32, 4, 8);
        Tensor out = s.be.allocate("out", DType.FLOAT32, 4, 8);
        Tensor lse = s.be.allocate("lse", DType.FLOAT32, 4, 2);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> s.be.attentionForward(out, lse, q, k, k, 1, 2, 3, 1f, null, 0, 0, 0));
        assertEquals("attentionForward: 3 key/value heads must divide 2 query heads", e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> s.be.attentionForward(out, lse, q, k.rows(3), k.rows(3), 3, 2, 2, 1f, null, 0, 0, 0));
        assertTrue(e.getMessage().contains("must hold 3 sequences"), e.getMessage());
    }

    @Test
    void sigmoidGate() {
        OpTestSupport s = new OpTestSupport(8);
        int n = 37;
        double[] x = rounded(s.randn(n, 1));
        double[] g = rounded(s.randn(n, 3));
        double[] dy = rounded(s.randn(n, 1));
        Tensor tx = s.tensor("x", x, n);
        Tensor tg = s.tensor("g", g, n);
        Tensor ty = s.poisoned("y", n);
        s.be.sigmoidGateForward(ty, tx, tg);
        assertClose("sigmoidGate fwd", Ref.sigmoidGate(x, g), s.read(ty), 1e-6);
        Tensor dx = s.poisoned("dx", n);
        Tensor dg = s.poisoned("dg", n);
        s.be.sigmoidGateBackward(dx, dg, s.tensor("dy", dy, n), tx, tg);
        assertClose("sigmoidGate dx", numericGrad(v -> Ref.sigmoidGate(v, g), x.clone(), dy), s.read(dx), GRAD_TOL);
        assertClose("sigmoidGate dg", numericGrad(v -> Ref.sigmoidGate(x, v), g.clone(), dy), s.read(dg), GRAD_TOL);
    }
}
