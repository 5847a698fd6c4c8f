package io.roundhouse.kernels;

import java.util.Arrays;

/** Shape checks shared by the backends: every failure names the op, the tensor and the shapes. */
public final class Check {
    private Check() {
    }

    // One, two and three dims without the varargs array: these checks run for every op of every step.
    public static void shape(String op, Tensor t, int d0) {
        if (t.rank() != 1 || t.dim(0) != d0) {
            shape(op, t, new int[] {d0});
        }
    }

    public static void shape(String op, Tensor t, int d0, int d1) {
        if (t.rank() != 2 || t.dim(0) != d0 || t.dim(1) != d1) {
            shape(op, t, new int[] {d0, d1});
        }
    }

    public static void shape(String op, Tensor t, int d0, int d1, int d2) {
        if (t.rank() != 3 || t.dim(0) != d0 || t.dim(1) != d1 || t.dim(2) != d2) {
            shape(op, t, new int[] {d0, d1, d2});
        }
    }

    public static void shape(String op, Tensor t, int... expected) {
        if (t.rank() != expected.length) {
            throw new IllegalArgumentException(op + ": " + t.name() + " has shape " + Arrays.toString(t.shape())
                    + ", expected " + Arrays.toString(expected));
        }
        for (int i = 0; i < expected.length; i++) {
            if (t.dim(i) != expected[i]) {
                throw new IllegalArgumentException(op + ": " + t.name() + " has shape " + Arrays.toString(t.shape())
                        + ", expected " + Arrays.toString(expected));
            }
        }
    }

    public static void atLeastRows(String op, Tensor t, int rows, int rowSize) {
        if (t.dim(0) < rows || t.rowSize() != rowSize) {
            throw new IllegalArgumentException(op + ": " + t.name() + " has shape " + Arrays.toString(t.shape())
                    + ", needs at least " + rows + " rows of " + rowSize);
        }
    }

    public static void sameSize(String op, Tensor a, Tensor b) {
        if (a.size() != b.size()) {
            throw new IllegalArgumentException(op + ": " + a + " and " + b + " differ in size");
        }
    }

    // ---- the checks every backend makes for an op (one place, so the backends agree) -----------

    public static void linearForward(Tensor y, Tensor x, Tensor w, Tensor b) {
        int n = x.dim(0);
        shape("linearForward", x, n, w.dim(0));
        shape("linearForward", y, n, w.dim(1));
        if (b != null) {
            shape("linearForward", b, w.dim(1));
        }
    }

    public static void linearBackward(Tensor dx, Tensor dw, Tensor dy, Tensor x, Tensor w) {
        int n = x.dim(0);
        shape("linearBackward", dy, n, w.dim(1));
        shape("linearBackward", dw, w.dim(0), w.dim(1));
        if (dx != null) {
            shape("linearBackward", dx, n, w.dim(0));
        }
    }

    /** y (or dy)[N,O], x[N,I], w[O,I]. */
    public static void linearTransposed(Tensor y, Tensor x, Tensor w) {
        int n = x.dim(0);
        shape("linearTransposed", x, n, w.dim(1));
        shape("linearTransposed", y, n, w.dim(0));
    }

    public static void activation(String op, Tensor pre, Tensor post, Activation act) {
        int n = pre.dim(0);
        int f = post.dim(1);
        shape(op, pre, n, act.preWidth(f));
        shape(op, post, n, f);
    }

    /** The dispatch plan's outputs for n tokens of k slots over E experts: every backend's. */
    public static void dispatchPlan(Tensor rowToken, Tensor copyRow, int[] offsets, int[] selected, int n, int k,
                                    int numExperts) {
        shape("dispatchPlan", copyRow, n, k);
        if (rowToken.size() < n * k) {
            throw new IllegalArgumentException("dispatchPlan: rowToken " + rowToken + " needs N·K = " + (n * k)
                    + " entries");
        }
        if (offsets.length != numExperts + 1) {
            throw new IllegalArgumentException("dispatchPlan: offsets needs E+1 = " + (numExperts + 1) + " entries");
        }
        if (selected.length != numExperts) {
            throw new IllegalArgumentException("dispatchPlan: selected needs E = " + numExperts + " entries");
        }
    }

    /**
     * {@link #groups}, but the first group may start past row 0 ({@code offsets[0] > 0}; the rows
     * before it are left alone): the expert FFN's forward and input half, run one expert at a time
     * as its rows arrive. Returns the end of the last group.
     */
    public static int groupsFrom(String op, int[] offsets, int e) {
        if (offsets.length == e + 1 && offsets[0] > 0) {
            for (int j = 0; j < e; j++) {
                if (!(offsets[j + 1] >= offsets[j])) {
                    throw new IllegalArgumentException(op + ": offsets must not decrease (expert " + j + ")");
                }
            }
            return offsets[e];
        }
        return groups(op, offsets, e);
    }

    /** Expert group boundaries: E+1 of them, from 0, not decreasing; returns the rows they cover. */
    public static int groups(String op, int[] offsets, int e) {
        if (!(offsets.length == e + 1)) {
            throw new IllegalArgumentException(op + ": offsets has " + offsets.length
                    + " entries, expected E+1 = " + (e + 1));
        }
        if (!(offsets[0] == 0)) {
            throw new IllegalArgumentException(op + ": offsets[0] must be 0, got " + offsets[0]);
        }
        for (int j = 0; j < e; j++) {
            if (!(offsets[j + 1] >= offsets[j])) {
                throw new IllegalArgumentException(op + ": offsets must not decrease (expert " + j + ")");
            }
        }
        return offsets[e];
    }

    public static void crossEntropyForward(Tensor losses, Tensor probs, Tensor logits, Tensor labels) {
        int n = logits.dim(0);
        shape("crossEntropyForward", probs, n, logits.dim(1));
        shape("crossEntropyForward", losses, n);
        shape("crossEntropyForward", labels, n);
    }

    /** The grouped FFN's tensors; returns the rows the groups cover. */
    public static int expertFfnForward(Tensor y, Tensor a, Tensor h, Tensor x, Tensor w1, Tensor w2, int[] offsets,
                                Activation act) {
        int e = w1.dim(0);
        int d = w1.dim(1);
        int f1 = w1.dim(2);
        int f = w2.dim(1);
        int m = groupsFrom("expertFfnForward", offsets, e);
        shape("expertFfnForward", w2, e, f, d);
        if (!(f1 == act.preWidth(f))) {
            throw new IllegalArgumentException("expertFfnForward: w1 width " + f1 + " does not match " + act
                    + " with hidden width " + f);
        }
        atLeastRows("expertFfnForward", x, m, d);
        atLeastRows("expertFfnForward", y, m, d);
        atLeastRows("expertFfnForward", a, m, f1);
        atLeastRows("expertFfnForward", h, m, f);
        return m;
    }

    /** {@link io.roundhouse.kernels.Backend#expertFfnBackwardData}'s tensors; returns the rows the groups cover. */
    public static int expertFfnBackwardData(Tensor dx, Tensor dy, Tensor w1, Tensor w2, int[] offsets,
                                            Tensor scratchDh, Tensor scratchDa) {
        int e = w1.dim(0);
        int d = w1.dim(1);
        int f1 = w1.dim(2);
        int f = w2.dim(1);
        int m = groupsFrom("expertFfnBackward", offsets, e);
        shape("expertFfnBackward", w2, e, f, d);
        atLeastRows("expertFfnBackward", dx, m, d);
        atLeastRows("expertFfnBackward", dy, m, d);
        atLeastRows("expertFfnBackward", scratchDh, m, f);
        atLeastRows("expertFfnBackward", scratchDa, m, f1);
        return m;
    }

    /** {@link io.roundhouse.kernels.Backend#expertFfnBackwardWeights}'s tensors; returns the rows the groups cover. */
    public static int expertFfnBackwardWeights(Tensor dw1, Tensor dw2, Tensor dy, Tensor x, Tensor h, int[] offsets,
                                               Tensor scratchDa) {
        int e = dw1.dim(0);
        int d = dw1.dim(1);
        int f1 = dw1.dim(2);
        int f = dw2.dim(1);
        int m = groups("expertFfnBackward", offsets, e);
        shape("expertFfnBackward", dw2, e, f, d);
        atLeastRows("expertFfnBackward", dy, m, d);
        atLeastRows("expertFfnBackward", x, m, d);
        atLeastRows("expertFfnBackward", h, m, f);
        atLeastRows("expertFfnBackward", scratchDa, m, f1);
        return m;
    }

    public static void normForward(Tensor y, Tensor mean, Tensor rstd, Tensor x, Tensor gamma) {
        int n = x.dim(0);
        int d = x.dim(1);
        shape("normForward", y, n, d);
        shape("normForward", gamma, d);
        shape("normForward", rstd, n);
        shape("normForward", mean, n);
    }

    public static void gateForward(Tensor probs, Tensor lse, Tensor topIdx, Tensor gates, Tensor logits) {
        int n = logits.dim(0);
        int e = logits.dim(1);
        int k = topIdx.dim(1);
        if (!(k >= 1 && k <= e)) {
            throw new IllegalArgumentException("gateForward: top-k " + k + " must be in [1, E=" + e + "]");
        }
        shape("gateForward", probs, n, e);
        shape("gateForward", lse, n);
        shape("gateForward", topIdx, n, k);
        shape("gateForward", gates, n, k);
    }

    public static void sigmoidTopKForward(Tensor probs, Tensor lse, Tensor topIdx, Tensor gates, Tensor logits,
                                          Tensor bias) {
        gateForward(probs, lse, topIdx, gates, logits);
        shape("sigmoidTopKForward", bias, logits.dim(1));
    }

    public static void sigmoidTopKBackward(Tensor dLogits, Tensor dGates, Tensor dProbs, Tensor dLse, Tensor logits,
                                           Tensor lse, Tensor topIdx, Tensor gates) {
        int n = logits.dim(0);
        int e = logits.dim(1);
        int k = topIdx.dim(1);
        shape("sigmoidTopKBackward", dLogits, n, e);
        shape("sigmoidTopKBackward", dGates, n, k);
        shape("sigmoidTopKBackward", lse, n);
        shape("sigmoidTopKBackward", topIdx, n, k);
        shape("sigmoidTopKBackward", gates, n, k);
        if (dProbs != null) {
            shape("sigmoidTopKBackward", dProbs, n, e);
        }
        if (dLse != null) {
            shape("sigmoidTopKBackward", dLse, n);
        }
    }

    // ---- the noisy top-k router ----

    /** out, in and raw all [N,E]; firstElement ≥ 0. */
    public static void noisyLogits(String op, Tensor out, Tensor in, Tensor raw, long firstElement) {
        int n = raw.dim(0);
        int e = raw.dim(1);
        shape(op, raw, n, e);
        shape(op, out, n, e);
        shape(op, in, n, e);
        firstElement(op, firstElement);
    }

    /** Every tensor [N,E] (the shape of noisy); k ≥ 1. */
    public static void noisyTopKLoad(String op, Tensor noisy, int k, Tensor... others) {
        int n = noisy.dim(0);
        int e = noisy.dim(1);
        shape(op, noisy, n, e);
        if (!(k >= 1)) {
            throw new IllegalArgumentException(op + ": top-k " + k + " must be >= 1");
        }
        for (Tensor t : others) {
            shape(op, t, n, e);
        }
    }

    /** values[N,K] beside topIdx[N,K], and the expert count of a per-expert host array. */
    public static void expertSlots(String op, Tensor topIdx, Tensor values, int experts) {
        if (!(topIdx.rank() == 2)) {
            throw new IllegalArgumentException(op + ": topIdx " + topIdx + " must be [N,K]");
        }
        shape(op, values, topIdx.dim(0), topIdx.dim(1));
        if (!(experts >= 1)) {
            throw new IllegalArgumentException(op + ": the per-expert array needs at least one entry, has " + experts);
        }
    }

    /** An expert index a slot holds: negative (no copy: skipped) or in [0, E). */
    public static void expertSlot(String op, int index, int slot, int k, int experts) {
        if (!(index < experts)) {
            throw new IllegalArgumentException(op + ": expert index " + index + " of token " + slot / k
                    + " (slot " + slot % k + ") is not below E = " + experts + " (use −1 for a slot with no copy)");
        }
    }

    public static void adamW(Tensor w, Tensor g, Tensor m, Tensor v, int t) {
        sameSize("adamWStep", w, g);
        sameSize("adamWStep", w, m);
        sameSize("adamWStep", w, v);
        if (!(t >= 1)) {
            throw new IllegalArgumentException("adamWStep: step must be >= 1, got " + t);
        }
    }

    public static void dropout(String op, Tensor out, Tensor in, float p, long firstElement) {
        sameSize(op, out, in);
        if (!(p >= 0f && p < 1f)) {
            throw new IllegalArgumentException(op + ": dropout rate must be in [0, 1), got " + p);
        }
        firstElement(op, firstElement);
    }

    public static void dropoutRows(String op, Tensor out, Tensor in, Tensor rates, long firstElement) {
        sameSize(op, out, in);
        shape(op, rates, in.dim(0));
        firstElement(op, firstElement);
    }

    /** The dropout rate of one row, as each backend reads it. */
    public static void rowRate(String op, int row, float p) {
        if (!(p >= 0f && p < 1f)) {
            throw new IllegalArgumentException(op + ": dropout rate of row " + row + " must be in [0, 1), got " + p);
        }
    }

    public static void jitter(Tensor y, Tensor x, Tensor amplitude, long firstElement) {
        sameSize("jitter", y, x);
        shape("jitter", amplitude, x.dim(0));
        firstElement("jitter", firstElement);
    }

    private static void firstElement(String op, long firstElement) {
        if (!(firstElement >= 0)) {
            throw new IllegalArgumentException(op + ": firstElement must be >= 0, got " + firstElement);
        }
    }

    /** @return whether b is a row broadcast over a's rows (else it has a's shape) */
    public static boolean multiply(String op, Tensor y, Tensor a, Tensor b) {
        sameSize(op, y, a);
        boolean row = b.size() != a.size();
        if (!(!row || (b.rank() == 1 && b.size() == a.rowSize()))) {
            throw new IllegalArgumentException(op + ": " + b + " is neither the shape of " + a + " nor a row of it");
        }
        return row;
    }

    /** @return the columns */
    public static int sumRowProducts(Tensor acc, Tensor a, Tensor b) {
        sameSize("sumRowProducts", a, b);
        int cols = a.rowSize();
        shape("sumRowProducts", acc, cols);
        return cols;
    }

    public static void rope(Tensor y, Tensor x, int headDim, int period, int firstPos) {
        sameSize("rope", y, x);
        if (!(headDim > 0 && headDim % 2 == 0 && x.rowSize() % headDim == 0)) {
            throw new IllegalArgumentException("rope: head width " + headDim
                    + " must be even and divide the row of " + x);
        }
        if (!(period > 0 && firstPos >= 0)) {
            throw new IllegalArgumentException("rope: period " + period + " must be > 0 and firstPos " + firstPos
                    + " >= 0");
        }
    }

    /**
     * The attention's shapes, for forward and backward: afterwards Tq = q.dim(0) / batch,
     * Tk = k.dim(0) / batch and dh = q.rowSize() / heads are whole.
     *
     * @param rates per-query-row dropout rates, or null
     */
    public static void attention(String op, Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v, int batch,
                                  int heads, int kvHeads, Tensor rates, long firstSequence) {
        if (!(heads > 0 && kvHeads > 0 && heads % kvHeads == 0)) {
            throw new IllegalArgumentException(op + ": " + kvHeads + " key/value heads must divide " + heads
                    + " query heads");
        }
        if (!(q.rowSize() % heads == 0)) {
            throw new IllegalArgumentException(op + ": " + q + " does not split into " + heads + " heads");
        }
        int dh = q.rowSize() / heads;
        if (!(k.rowSize() == kvHeads * dh && v.rowSize() == kvHeads * dh && k.dim(0) == v.dim(0))) {
            throw new IllegalArgumentException(op + ": " + k + " and " + v + " must both be [B·Tk, " + kvHeads
                    + "·" + dh + "]");
        }
        if (!(batch > 0 && q.dim(0) % batch == 0 && k.dim(0) % batch == 0)) {
            throw new IllegalArgumentException(op + ": " + q + " and " + k + " must hold " + batch + " sequences each");
        }
        int tq = q.dim(0) / batch;
        int tk = k.dim(0) / batch;
        if (!(tq <= tk)) {
            throw new IllegalArgumentException(op + ": " + tq + " queries per sequence but only " + tk + " keys");
        }
        shape(op, out, q.dim(0), q.rowSize());
        if (!(lse.size() == q.dim(0) * heads)) {
            throw new IllegalArgumentException(op + ": " + lse + " must be [B·Tq, " + heads + "]");
        }
        if (!(firstSequence >= 0)) {
            throw new IllegalArgumentException(op + ": firstSequence must be >= 0, got " + firstSequence);
        }
        if (rates != null) {
            shape(op, rates, q.dim(0));
        }
    }

    public static void sigmoidGate(String op, Tensor y, Tensor x, Tensor g) {
        sameSize(op, y, x);
        sameSize(op, g, x);
    }

    /** The patch count P of {@code side}-pixel images in patches of {@code patch}, checking both shapes. */
    public static int patches(String op, Tensor xp, Tensor x, int channels, int side, int patch) {
        if (channels < 1 || side < 1 || patch < 1 || side % patch != 0) {
            throw new IllegalArgumentException(op + ": " + channels + " channel(s) of " + side + "×" + side
                    + " pixels do not cut into patches of " + patch + "×" + patch + " (the patch side must divide "
                    + "the image side)");
        }
        int g = x.rank() == 2 ? x.dim(0) : -1;
        shape(op, x, g, channels * side * side);
        int perSide = side / patch;
        int p = perSide * perSide;
        shape(op, xp, g * p, channels * patch * patch);
        return p;
    }

    public static void transposeGroups(String op, Tensor y, Tensor x, int groups) {
        that(groups >= 1 && x.rank() == 2 && x.dim(0) % groups == 0, op + ": " + x + " does not split into "
                + groups + " groups of rows");
        int a = x.dim(0) / groups;
        shape(op, y, groups * x.dim(1), a);
    }

    /** The rows per group, P, checking y[G, D] against x[G·P, D]. */
    public static int meanGroups(String op, Tensor y, Tensor x, int groups) {
        that(groups >= 1 && x.rank() == 2 && x.dim(0) % groups == 0 && x.dim(0) >= groups, op + ": " + x
                + " does not split into " + groups + " groups of rows");
        shape(op, y, groups, x.dim(1));
        return x.dim(0) / groups;
    }

    public static void that(boolean ok, String message) {
        if (!ok) {
            throw new IllegalArgumentException(message);
        }
    }
}
