package io.roundhouse.kernels;

import static io.roundhouse.kernels.OpTestSupport.assertClose;
import static io.roundhouse.kernels.OpTestSupport.dot;
import static io.roundhouse.kernels.OpTestSupport.numericGrad;
import static io.roundhouse.kernels.OpTestSupport.rounded;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Gating, the dispatch plan, permute/un-permute and the router losses. */
class RoutingOpsTest {
    private static final double GRAD_TOL = 2e-4;

    @ParameterizedTest
    @EnumSource(GateMode.class)
    void gateForwardAndBackward(GateMode mode) {
        for (int[] nek : new int[][] {{1, 1, 1}, {1, 4, 2}, {7, 5, 3}, {16, 8, 2}, {9, 3, 3}}) {
            int n = nek[0];
            int e = nek[1];
            int k = nek[2];
            OpTestSupport s = new OpTestSupport(n * 100L + e * 10 + k);
            double[] l = rounded(s.randn(n * e, 1.5));
            Tensor tl = s.tensor("logits", l, n, e);
            Tensor probs = s.poisoned("probs", n, e);
            Tensor lse = s.poisoned("lse", n);
            Tensor idx = s.be.allocate("topIdx", DType.INT32, n, k);
            Tensor gates = s.poisoned("gates", n, k);
            s.be.gateForward(probs, lse, idx, gates, tl, mode);
            String tag = mode + " N=" + n + " E=" + e + " K=" + k;
            int[] want = Ref.topK(l, n, e, k);
            assertArrayEquals(want, s.readInts(idx), tag + " top-k indices");
            assertClose("gate probs " + tag, Ref.softmax(l, n, e), s.read(probs), 1e-6);
            assertClose("gate lse " + tag, Ref.logSumExp(l, n, e), s.read(lse), 1e-6);
            assertClose("gate values " + tag, Ref.gates(l, want, n, e, k, mode), s.read(gates), 1e-6);

            // Backward through gates, the full softmax (as the load-balancing loss uses it) and lse.
            double[] dg = rounded(s.randn(n * k, 1));
            double[] dp = rounded(s.randn(n * e, 1));
            double[] dlse = rounded(s.randn(n, 1));
            Tensor dl = s.poisoned("dLogits", n, e);
            s.be.gateBackward(dl, s.tensor("dGates", dg, n, k), s.tensor("dProbs", dp, n, e), s.tensor("dLse", dlse, n),
                    probs, idx, gates, mode);
            double[] fd = numericGrad(v -> {
                double[] g = Ref.gates(v, want, n, e, k, mode);
                double[] p = Ref.softmax(v, n, e);
                double[] z = Ref.logSumExp(v, n, e);
                double[] all = new double[g.length + p.length + z.length];
                System.arraycopy(g, 0, all, 0, g.length);
                System.arraycopy(p, 0, all, g.length, p.length);
                System.arraycopy(z, 0, all, g.length + p.length, z.length);
                return all;
            }, l.clone(), concat(dg, dp, dlse));
            assertClose("gate dLogits " + tag, fd, s.read(dl), GRAD_TOL);
        }
    }

    @Test
    void sigmoidTopKForwardAndBackward() {
        for (int[] nek : new int[][] {{1, 1, 1}, {1, 4, 2}, {7, 5, 3}, {16, 8, 2}, {9, 3, 3}, {12, 16, 4}}) {
            int n = nek[0];
            int e = nek[1];
            int k = nek[2];
            OpTestSupport s = new OpTestSupport(n * 100L + e * 10 + k + 7);
            double[] l = rounded(s.randn(n * e, 1.5));
            // A bias that changes some choices: scores are in (0, 1), the bias of the same order.
            double[] bias = rounded(s.randn(e, 0.3));
            Tensor tl = s.tensor("logits", l, n, e);
            Tensor probs = s.poisoned("probs", n, e);
            Tensor lse = s.poisoned("lse", n);
            Tensor idx = s.be.allocate("topIdx", DType.INT32, n, k);
            Tensor gates = s.poisoned("gates", n, k);
            s.be.sigmoidTopKForward(probs, lse, idx, gates, tl, s.tensor("bias", bias, e));
            String tag = "N=" + n + " E=" + e + " K=" + k;
            int[] want = Ref.sigmoidTopK(l, bias, n, e, k);
            assertArrayEquals(want, s.readInts(idx), tag + " top-k of score + bias");
            assertClose("sigmoid shares " + tag, Ref.sigmoidShares(l, n, e), s.read(probs), 1e-6);
            assertClose("sigmoid lse " + tag, Ref.logSumExp(l, n, e), s.read(lse), 1e-6);
            assertClose("sigmoid gates " + tag, Ref.sigmoidGates(l, want, n, e, k), s.read(gates), 1e-6);

            double[] dg = rounded(s.randn(n * k, 1));
            double[] dp = rounded(s.randn(n * e, 1));
            double[] dlse = rounded(s.randn(n, 1));
            Tensor dl = s.poisoned("dLogits", n, e);
            s.be.sigmoidTopKBackward(dl, s.tensor("dGates", dg, n, k), s.tensor("dProbs", dp, n, e),
                    s.tensor("dLse", dlse, n), tl, lse, idx, gates);
            double[] fd = numericGrad(v -> concat(Ref.sigmoidGates(v, want, n, e, k), Ref.sigmoidShares(v, n, e),
                    Ref.logSumExp(v, n, e)), l.clone(), concat(dg, dp, dlse));
            assertClose("sigmoid dLogits " + tag, fd, s.read(dl), GRAD_TOL);

            // Without the auxiliary terms only the chosen experts' logits get a gradient.
            s.be.sigmoidTopKBackward(dl, s.tensor("dGates", dg, n, k), null, null, tl, lse, idx, gates);
            double[] fdGates = numericGrad(v -> Ref.sigmoidGates(v, want, n, e, k), l.clone(), dg);
            assertClose("sigmoid dLogits, gates only " + tag, fdGates, s.read(dl), GRAD_TOL);
        }
    }

    @Test
    void routerEntropySumsTheRowsEntropies() {
        OpTestSupport s = new OpTestSupport(4);
        int n = 13;
        int e = 6;
        double[] p = Ref.softmax(s.randn(n * e, 2), n, e);
        p[0] = 0;  // a zero probability contributes 0·ln 0 = 0
        double want = 0;
        for (int r = 0; r < n; r++) {
            for (int j = 0; j < e; j++) {
                double v = p[r * e + j];
                want -= v > 0 ? v * Math.log(v) : 0;
            }
        }
        assertEquals(want, s.be.routerEntropy(s.tensor("probs", p, n, e)), 1e-5);
        // uniform rows: ln E each; one-hot rows: 0
        double[] uniform = new double[2 * e];
        java.util.Arrays.fill(uniform, 1.0 / e);
        assertEquals(2 * Math.log(e), s.be.routerEntropy(s.tensor("u", uniform, 2, e)), 1e-5);
        double[] hot = new double[2 * e];
        hot[1] = 1;
        hot[e + 3] = 1;
        assertEquals(0.0, s.be.routerEntropy(s.tensor("h", hot, 2, e)), 0.0);
    }

    @Test
    void sigmoidBiasOnlySelects() {
        OpTestSupport s = new OpTestSupport(2);
        // Scores σ(0, 1, 2) ≈ 0.5, 0.73, 0.88; a bias of +1 on expert 0 makes it the first choice,
        // and its gate stays its own score's share.
        Tensor tl = s.tensor("logits", new double[] {0, 1, 2}, 1, 3);
        Tensor idx = s.be.allocate("idx", DType.INT32, 1, 2);
        Tensor gates = s.be.allocate("g", DType.FLOAT32, 1, 2);
        s.be.sigmoidTopKForward(s.be.allocate("p", DType.FLOAT32, 1, 3), s.be.allocate("lse", DType.FLOAT32, 1), idx,
                gates, tl, s.tensor("bias", new double[] {1, 0, 0}, 3));
        assertArrayEquals(new int[] {0, 2}, s.readInts(idx));
        double s0 = 1 / (1 + Math.exp(0));
        double s2 = 1 / (1 + Math.exp(-2));
        assertClose("gates ignore the bias", new double[] {s0 / (s0 + s2), s2 / (s0 + s2)}, s.read(gates), 1e-6);
    }

    private static double[] concat(double[]... parts) {
        int n = 0;
        for (double[] p : parts) {
            n += p.length;
        }
        double[] all = new double[n];
        int at = 0;
        for (double[] p : parts) {
            System.arraycopy(p, 0, all, at, p.length);
            at += p.length;
        }
        return all;
    }

    @Test
    void renormalisedSoftmaxEqualsTopKThenSoftmax() {
        OpTestSupport s = new OpTestSupport(5);
        int n = 33;
        int e = 8;
        int k = 2;
        Tensor tl = s.tensor("logits", s.randn(n * e, 3), n, e);
        double[][] g = new double[2][];
        GateMode[] modes = {GateMode.SOFTMAX_TOPK_RENORM, GateMode.TOPK_SOFTMAX};
        for (int j = 0; j < 2; j++) {
            Tensor gates = s.be.allocate("gates", DType.FLOAT32, n, k);
            s.be.gateForward(s.be.allocate("p", DType.FLOAT32, n, e), s.be.allocate("lse", DType.FLOAT32, n),
                    s.be.allocate("idx", DType.INT32, n, k), gates, tl, modes[j]);
            g[j] = s.read(gates);
        }
        assertClose("renorm vs topk_softmax", g[0], g[1], 1e-6);
    }

    @Test
    void tiesGoToTheLowerExpert() {
        OpTestSupport s = new OpTestSupport(1);
        Tensor tl = s.tensor("logits", new double[] {1, 3, 3, 0, 3}, 1, 5);
        Tensor idx = s.be.allocate("idx", DType.INT32, 1, 3);
        s.be.gateForward(s.be.allocate("p", DType.FLOAT32, 1, 5), s.be.allocate("lse", DType.FLOAT32, 1), idx,
                s.be.allocate("g", DType.FLOAT32, 1, 3), tl, GateMode.TOPK_SOFTMAX);
        assertArrayEquals(new int[] {1, 2, 4}, s.readInts(idx));
    }

    @Test
    void dispatchPlanFollowsThePriorityRule() {
        OpTestSupport s = new OpTestSupport(1);
        // 4 tokens, top-2, 3 experts. Choices (first, second) per token:
        int[] top = {0, 1, /**/ 0, 2, /**/ 0, 1, /**/ 1, 0};
        Tensor idx = s.ints("topIdx", top, 4, 2);
        Tensor rowToken = s.be.allocate("rowToken", DType.INT32, 8);
        Tensor copyRow = s.be.allocate("copyRow", DType.INT32, 4, 2);
        int[] offsets = new int[4];
        int[] selected = new int[3];
        // Capacity 2: first choices go first (tokens 0,1 take expert 0; token 2's first choice is
        // dropped; token 3 takes expert 1), then second choices (token 0 takes expert 1; token 1
        // takes expert 2; token 2's second choice, expert 1, is full; token 3's, expert 0, is full).
        int m = s.be.dispatchPlan(rowToken, copyRow, offsets, selected, idx, 3, 2);
        assertEquals(5, m);
        assertArrayEquals(new int[] {4, 3, 1}, selected, "copies that chose each expert before the limit");
        assertArrayEquals(new int[] {0, 2, 4, 5}, offsets);
        assertArrayEquals(new int[] {0, 1, 3, 0, 1}, java.util.Arrays.copyOf(s.readInts(rowToken), 5));
        assertArrayEquals(new int[] {0, 3, 1, 4, -1, -1, 2, -1}, s.readInts(copyRow));

        // Dropless keeps every copy; groups hold each expert's copies in priority order.
        m = s.be.dispatchPlan(rowToken, copyRow, offsets, selected, idx, 3, 0);
        assertEquals(8, m);
        assertArrayEquals(new int[] {0, 4, 7, 8}, offsets);
        assertArrayEquals(new int[] {0, 1, 2, 3, 3, 0, 2, 1}, s.readInts(rowToken));
    }

    @Test
    void dispatchPlanSkipsEmptySlots() {
        OpTestSupport s = new OpTestSupport(1);
        // 3 tokens, 3 slots, 3 experts: token 0 has two copies, token 1 none, token 2 three.
        int[] top = {2, 0, -1, /**/ -1, -1, -1, /**/ 0, 1, 2};
        Tensor idx = s.ints("topIdx", top, 3, 3);
        Tensor rowToken = s.be.allocate("rowToken", DType.INT32, 9);
        Tensor copyRow = s.be.allocate("copyRow", DType.INT32, 3, 3);
        int[] offsets = new int[4];
        int[] selected = new int[3];
        int m = s.be.dispatchPlan(rowToken, copyRow, offsets, selected, idx, 3, 0);
        assertEquals(5, m);
        assertArrayEquals(new int[] {2, 1, 2}, selected, "empty slots choose nothing");
        assertArrayEquals(new int[] {0, 2, 3, 5}, offsets);
        // Expert 0: token 2's slot 0, then token 0's slot 1; expert 1: token 2; expert 2: token 0, token 2.
        assertArrayEquals(new int[] {2, 0, 2, 0, 2}, java.util.Arrays.copyOf(s.readInts(rowToken), 5));
        assertArrayEquals(new int[] {3, 1, -1, -1, -1, -1, 0, 2, 4}, s.readInts(copyRow));
        // With capacity 1 the slot order decides: token 2's slot 0 takes expert 0, token 0's slot 0 expert 2.
        m = s.be.dispatchPlan(rowToken, copyRow, offsets, selected, idx, 3, 1);
        assertEquals(3, m);
        assertArrayEquals(new int[] {2, 1, 2}, selected);
        assertArrayEquals(new int[] {2, -1, -1, -1, -1, -1, 0, 1, -1}, s.readInts(copyRow));
        Tensor bad = s.ints("bad", new int[] {0, -2, 1, 1, 0, 0, 0, 0, 0}, 3, 3);
        var e = org.junit.jupiter.api.Assertions.assertThrows(RuntimeException.class,
                () -> s.be.dispatchPlan(rowToken, copyRow, offsets, selected, bad, 3, 0));
        assertTrue(e.getMessage().contains("expert index -2 of token 0"), e.getMessage());
    }

    @Test
    void selectAtLeastEmptiesTheSlotsBelowTheThreshold() {
        OpTestSupport s = new OpTestSupport(1);
        Tensor idx = s.ints("topIdx", new int[] {3, 1, 0, /**/ 2, 0, 1}, 2, 3);
        Tensor gates = s.tensor("gates", new double[] {0.6, 0.3, 0.1, /**/ 0.34, 0.33, 0.33}, 2, 3);
        Tensor copies = s.be.allocate("copies", DType.INT32, 2, 3);
        s.be.selectAtLeast(copies, idx, gates, 0.3f);
        assertArrayEquals(new int[] {3, 1, -1, /**/ 2, 0, 1}, s.readInts(copies));
        s.be.selectAtLeast(copies, idx, gates, 0.335f);
        assertArrayEquals(new int[] {3, -1, -1, /**/ 2, -1, -1}, s.readInts(copies));
    }

    @Test
    void dispatchPlanIsConsistentOnRandomRoutes() {
        OpTestSupport s = new OpTestSupport(9);
        int n = 57;
        int k = 2;
        int e = 6;
        int[] top = new int[n * k];
        for (int r = 0; r < n; r++) {
            top[r * k] = s.rnd.nextInt(e);
            top[r * k + 1] = (top[r * k] + 1 + s.rnd.nextInt(e - 1)) % e;
        }
        Tensor rowToken = s.be.allocate("rowToken", DType.INT32, n * k);
        Tensor copyRow = s.be.allocate("copyRow", DType.INT32, n, k);
        int[] offsets = new int[e + 1];
        int[] selected = new int[e];
        int capacity = (int) Math.ceil(1.0 * k * n / e);
        int m = s.be.dispatchPlan(rowToken, copyRow, offsets, selected, s.ints("topIdx", top, n, k), e, capacity);
        int[] tok = s.readInts(rowToken);
        int[] rows = s.readInts(copyRow);
        int kept = 0;
        for (int c = 0; c < n * k; c++) {
            if (rows[c] >= 0) {
                kept++;
                assertEquals(c / k, tok[rows[c]], "row " + rows[c] + " holds its copy's token");
                int ex = top[c];
                assertTrue(rows[c] >= offsets[ex] && rows[c] < offsets[ex + 1], "copy " + c + " sits in its expert's group");
            }
        }
        assertEquals(m, kept);
        for (int ex = 0; ex < e; ex++) {
            assertTrue(offsets[ex + 1] - offsets[ex] <= capacity, "expert " + ex + " over capacity");
            assertEquals(Math.min(selected[ex], capacity), offsets[ex + 1] - offsets[ex], "expert " + ex + " fills to capacity");
        }
    }

    @Test
    void permuteAndUnpermuteAreAdjoint() {
        OpTestSupport s = new OpTestSupport(3);
        for (int[] shape : new int[][] {{1, 1, 1, 3}, {5, 2, 3, 4}, {31, 2, 8, 16}, {12, 3, 4, 1}}) {
            int n = shape[0];
            int k = shape[1];
            int e = shape[2];
            int d = shape[3];
            int[] top = Ref.topK(s.randn(n * e, 1), n, e, k);
            Tensor rowToken = s.be.allocate("rowToken", DType.INT32, n * k);
            Tensor copyRow = s.be.allocate("copyRow", DType.INT32, n, k);
            int capacity = Math.max(1, n * k / e - 1); // some copies drop
            int m = s.be.dispatchPlan(rowToken, copyRow, new int[e + 1], new int[e], s.ints("topIdx", top, n, k), e, capacity);
            double[] x = rounded(s.randn(n * d, 1));
            double[] y = rounded(s.randn(m * d, 1));
            Tensor xp = s.poisoned("xp", n * k, d);
            s.be.permuteForward(xp, s.tensor("x", x, n, d), rowToken, m);
            Tensor ux = s.poisoned("unpermute(y)", n, d);
            s.be.unpermuteForward(ux, s.tensor("y", y, Math.max(m, 1), d).rows(m), copyRow, null);
            double lhs = dot(java.util.Arrays.copyOf(s.read(xp), m * d), y);
            double rhs = dot(x, s.read(ux));
            assertEquals(lhs, rhs, 1e-4 * Math.max(1, Math.abs(lhs)), "<permute(x), y> == <x, unpermute(y)> for " + java.util.Arrays.toString(shape));
            // permute's backward is the unweighted un-permute.
            Tensor dx = s.poisoned("dx", n, d);
            s.be.permuteBackward(dx, s.tensor("y", y, Math.max(m, 1), d).rows(m), rowToken, m);
            assertClose("permuteBackward == unpermute " + java.util.Arrays.toString(shape), s.read(ux), s.read(dx), 1e-6);
        }
    }

    @Test
    void weightedUnpermuteBackward() {
        OpTestSupport s = new OpTestSupport(4);
        int n = 9;
        int k = 2;
        int e = 4;
        int d = 5;
        int[] top = Ref.topK(s.randn(n * e, 1), n, e, k);
        Tensor rowToken = s.be.allocate("rowToken", DType.INT32, n * k);
        Tensor copyRow = s.be.allocate("copyRow", DType.INT32, n, k);
        int m = s.be.dispatchPlan(rowToken, copyRow, new int[e + 1], new int[e], s.ints("topIdx", top, n, k), e, 4);
        int[] rows = s.readInts(copyRow);
        double[] yp = rounded(s.randn(m * d, 1));
        double[] g = rounded(s.randn(n * k, 1));
        double[] dy = rounded(s.randn(n * d, 1));
        Tensor ty = s.poisoned("y", n, d);
        Tensor typ = s.tensor("yp", yp, m, d);
        Tensor tg = s.tensor("gates", g, n, k);
        s.be.unpermuteForward(ty, typ, copyRow, tg);
        assertClose("unpermute fwd", Ref.unpermute(yp, rows, g, n, k, d), s.read(ty), 1e-6);
        Tensor dyp = s.poisoned("dyp", m, d);
        Tensor dg = s.poisoned("dGates", n, k);
        s.be.unpermuteBackward(dyp, dg, s.tensor("dy", dy, n, d), typ, copyRow, tg);
        assertClose("unpermute dyp", numericGrad(v -> Ref.unpermute(v, rows, g, n, k, d), yp.clone(), dy), s.read(dyp), GRAD_TOL);
        assertClose("unpermute dGates", numericGrad(v -> Ref.unpermute(yp, rows, v, n, k, d), g.clone(), dy), s.read(dg), GRAD_TOL);
    }

    @Test
    void routerLosses() {
        OpTestSupport s = new OpTestSupport(6);
        int n = 11;
        int e = 5;
        int k = 2;
        double[] p = rounded(Ref.softmax(s.randn(n * e, 1), n, e));
        double[] lse = rounded(s.randn(n, 2));
        int[] selected = {7, 3, 0, 8, 4};
        float alpha = 0.01f;
        float beta = 0.001f;
        java.util.function.Function<double[], double[]> ref = v -> {
            double lb = 0;
            for (int j = 0; j < e; j++) {
                double meanP = 0;
                for (int r = 0; r < n; r++) {
                    meanP += v[r * e + j] / n;
                }
                lb += selected[j] / (double) (n * k) * meanP;
            }
            double z = 0;
            for (int r = 0; r < n; r++) {
                z += v[n * e + r] * v[n * e + r] / n;
            }
            return new double[] {alpha * e * lb, beta * z};
        };
        double[] both = new double[n * e + n];
        System.arraycopy(p, 0, both, 0, n * e);
        System.arraycopy(lse, 0, both, n * e, n);
        Tensor tp = s.tensor("probs", p, n, e);
        Tensor tl = s.tensor("lse", lse, n);
        float[] probSums = new float[e];
        s.be.routerStats(tp, probSums);
        float[] got = s.be.routerLossForward(tl, selected, probSums, n, k, alpha, beta, new float[2]);
        assertClose("router losses fwd", ref.apply(both), new double[] {got[0], got[1]}, 1e-6);
        Tensor dp = s.poisoned("dProbs", n, e);
        Tensor dl = s.poisoned("dLse", n);
        s.be.routerLossBackward(dp, dl, tl, selected, n, k, alpha, beta, 1f);
        double[] fd = numericGrad(ref, both.clone(), new double[] {1, 1});
        double[] bwd = new double[n * e + n];
        System.arraycopy(s.read(dp), 0, bwd, 0, n * e);
        System.arraycopy(s.read(dl), 0, bwd, n * e, n);
        assertClose("router losses bwd", fd, bwd, GRAD_TOL);

        // Split the tokens over two workers: with summed statistics their losses and gradients add
        // up to the single worker's.
        int n1 = 4;
        float[] sums1 = new float[e];
        float[] sums2 = new float[e];
        s.be.routerStats(tp.rows(0, n1), sums1);
        s.be.routerStats(tp.rows(n1, n - n1), sums2);
        float[] global = new float[e];
        for (int j = 0; j < e; j++) {
            global[j] = sums1[j] + sums2[j];
        }
        float[] a = s.be.routerLossForward(tl.rows(0, n1), selected, global, n, k, alpha, beta, new float[2]);
        float[] b = s.be.routerLossForward(tl.rows(n1, n - n1), selected, global, n, k, alpha, beta, new float[2]);
        assertEquals(got[0], a[0], 1e-7, "every worker sees the global load-balancing loss");
        assertEquals(got[1], a[1] + b[1], 1e-7, "z-loss shares add up");
        Tensor dp1 = s.poisoned("dProbs1", n1, e);
        Tensor dl1 = s.poisoned("dLse1", n1);
        s.be.routerLossBackward(dp1, dl1, tl.rows(0, n1), selected, n, k, alpha, beta, 1f);
        assertClose("worker 1 dProbs", java.util.Arrays.copyOf(s.read(dp), n1 * e), s.read(dp1), 1e-6);
        assertClose("worker 1 dLse", java.util.Arrays.copyOf(s.read(dl), n1), s.read(dl1), 1e-6);
    }
}
