package io.roundhouse.kernels.cpu;

import static io.roundhouse.kernels.cpu.CpuBackend.f;
import static io.roundhouse.kernels.cpu.CpuBackend.o;

import io.roundhouse.kernels.Blas;
import io.roundhouse.kernels.Check;
import io.roundhouse.kernels.Philox;
import io.roundhouse.kernels.Tensor;

/**
 * The CPU backend's transformer ops: rotary position embedding, causal attention and the attention
 * output gate.
 *
 * <p>Attention runs by sequence, head and tile of {@value #TILE} queries: one GEMM gives the tile's
 * scores against the keys it can see (the causal blocks past the tile's last query are never
 * computed), a row softmax in place, one GEMM for the output. Backward rebuilds each tile's
 * probabilities from the saved log-sum-exp (memory O(TILE·T) per call, never T×T per head) and
 * accumulates dk and dv with GEMMs. The scratch grows once to the longest sequence. The softmax's
 * exponentials are {@link CpuActivations#exp}'s (Math.exp cost three times as much, and the
 * softmax was most of attention's time outside the GEMMs).
 *
 * <p>Attention and the rotation split over the backend's threads ({@link CpuThreads}): forward by
 * (sequence, head), backward by (sequence, key/value head) with the heads that share it in order,
 * rotation by rows. Each unit is computed as the one-thread loop computes it, and no two units write
 * the same element, so the bits do not depend on the thread count. A split call's arguments sit in
 * fields that the chunk bodies, made once, read; each chunk has its own tile scratch.
 */
final class CpuTransformer {
    static final int TILE = 64;

    /** One chunk's tile scratch, [TILE, Tk] each. */
    private static final class Tiles {
        float[] scores = new float[0];   // probabilities
        float[] grads = new float[0];    // dP, then dS
        float[] keep = new float[0];     // dropout's keep/(1−p) or 0
        float[] dropped = new float[0];  // probabilities after dropout

        void grow(int tk) {
            int n = TILE * tk;
            if (scores.length < n) {
                scores = new float[n];
                grads = new float[n];
                keep = new float[n];
                dropped = new float[n];
            }
        }
    }

    private final Tiles[] tiles = new Tiles[CpuThreads.THREADS];

    // The attention call being split (cleared when it returns).
    private Tensor out;
    private Tensor lse;
    private Tensor q;
    private Tensor k;
    private Tensor v;
    private Tensor dq;
    private Tensor dk;
    private Tensor dv;
    private Tensor dOut;
    private Tensor rates;
    private int heads;
    private int kvHeads;
    private int tq;
    private int tk;
    private int dh;
    private float scale;
    private long seed;
    private long stream;
    private long firstSequence;
    private boolean[] drops = new boolean[0];  // [batch] whether any row of the sequence drops

    private final CpuThreads.Rows forwardChunk = (c, from, to) -> {
        Tiles t = tiles[c];
        for (int u = from; u < to; u++) {
            forwardHead(u / heads, u % heads, t);
        }
    };
    private final CpuThreads.Rows backwardChunk = (c, from, to) -> {
        Tiles t = tiles[c];
        int group = heads / kvHeads;
        for (int u = from; u < to; u++) {
            int b = u / kvHeads;
            int g = u % kvHeads;
            for (int h = g * group; h < (g + 1) * group; h++) {
                backwardHead(b, h, t);
            }
        }
    };

    // The rotation being split.
    private Tensor ropeY;
    private Tensor ropeX;
    private int ropeHeadDim;
    private int ropePeriod;
    private int ropeFirstPos;
    private float ropeTheta;
    private boolean ropeInverse;
    private Angles ropeAngles;
    private final CpuThreads.Rows ropeChunk = (c, from, to) -> rotate(ropeY, ropeX, ropeHeadDim, ropePeriod,
            ropeFirstPos, ropeTheta, ropeInverse, ropeAngles, from, to);

    /** The last rotary frequencies made, for their theta and head width (immutable: shared by threads). */
    private record Frequencies(float theta, int headDim, double[] inv) {
    }

    private static volatile Frequencies frequencies = new Frequencies(0f, 0, new double[0]);

    /** θ^(−2i/headDim) for i < headDim/2; made once per (θ, head width), not per call. */
    private static double[] frequencies(float theta, int headDim) {
        Frequencies f = frequencies;
        if (f.theta() != theta || f.headDim() != headDim) {
            double[] inv = new double[headDim / 2];
            for (int i = 0; i < inv.length; i++) {
                inv[i] = Math.pow(theta, -2.0 * i / headDim);
            }
            f = new Frequencies(theta, headDim, inv);
            frequencies = f;
        }
        return f.inv();
    }

    /**
     * The rotation's cos and sin of {@code pos·θ^(−2i/headDim)} for positions [0, positions) and
     * i < headDim/2, as floats (what the rotation multiplies by): made once per (θ, head width) and
     * grown to the furthest position asked, so a step computes no sine or cosine. Immutable: shared
     * by threads.
     */
    private record Angles(float theta, int headDim, int positions, float[] cos, float[] sin) {
    }

    private static volatile Angles angles = new Angles(0f, 0, 0, new float[0], new float[0]);

    /** Most table entries (positions × headDim/2) kept; rotations past them compute their angles. */
    private static final int MAX_ANGLES = 1 << 20;

    /** The table covering positions [0, positions), or null when it would be larger than {@link #MAX_ANGLES}. */
    private static Angles angles(float theta, int headDim, long positions) {
        int half = headDim / 2;
        if (positions * half > MAX_ANGLES) {
            return null;
        }
        Angles a = angles;
        if (a.theta() != theta || a.headDim() != headDim || a.positions() < positions) {
            boolean same = a.theta() == theta && a.headDim() == headDim;
            // Grown by half again at least, so a growing sequence rebuilds it rarely.
            int p = (int) Math.min(Math.max(positions, same ? a.positions() + a.positions() / 2 : 0),
                    MAX_ANGLES / Math.max(1, half));
            double[] inv = frequencies(theta, headDim);
            float[] cos = new float[p * half];
            float[] sin = new float[p * half];
            for (int pos = 0; pos < p; pos++) {
                for (int i = 0; i < half; i++) {
                    double angle = pos * inv[i];
                    cos[pos * half + i] = (float) Math.cos(angle);
                    sin[pos * half + i] = (float) Math.sin(angle);
                }
            }
            a = new Angles(theta, headDim, p, cos, sin);
            angles = a;
        }
        return a;
    }

    void rope(Tensor y, Tensor x, int headDim, int period, int firstPos, float theta, boolean inverse) {
        Check.rope(y, x, headDim, period, firstPos);
        int n = x.dim(0);
        Angles a = angles(theta, headDim, (long) firstPos + Math.min(n, period));
        if (CpuThreads.chunks(n, x.rowSize()) == 1) {
            rotate(y, x, headDim, period, firstPos, theta, inverse, a, 0, n);
            return;
        }
        ropeY = y;
        ropeX = x;
        ropeHeadDim = headDim;
        ropePeriod = period;
        ropeFirstPos = firstPos;
        ropeTheta = theta;
        ropeInverse = inverse;
        ropeAngles = a;
        try {
            CpuThreads.rows(n, x.rowSize(), ropeChunk);
        } finally {
            ropeY = null;
            ropeX = null;
            ropeAngles = null;
        }
    }

    /** Rows [from, to) of {@link #rope}, with the angle table {@code a} (null: computed here). */
    private static void rotate(Tensor y, Tensor x, int headDim, int period, int firstPos, float theta,
                               boolean inverse, Angles a, int from, int to) {
        float[] ya = f(y);
        float[] xa = f(x);
        int yo = o(y);
        int xo = o(x);
        int row = x.rowSize();
        int half = headDim / 2;
        double[] invFreq = a == null ? frequencies(theta, headDim) : null;
        for (int r = from; r < to; r++) {
            int pos = firstPos + r % period;
            for (int i = 0; i < half; i++) {
                float c;
                float s;
                if (a != null) {
                    c = a.cos()[pos * half + i];
                    s = a.sin()[pos * half + i];
                } else {
                    double angle = (long) pos * invFreq[i];
                    c = (float) Math.cos(angle);
                    s = (float) Math.sin(angle);
                }
                if (inverse) {
                    s = -s;  // the rotation by −angle: (float) −sin is −(float) sin exactly
                }
                for (int base = r * row; base < (r + 1) * row; base += headDim) {
                    float p = xa[xo + base + i];
                    float b = xa[xo + base + i + half];
                    ya[yo + base + i] = p * c - b * s;
                    ya[yo + base + i + half] = b * c + p * s;
                }
            }
        }
    }

    void attentionForward(Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v, int batch, int heads, int kvHeads,
                          float scale, Tensor rates, long seed, long stream, long firstSequence) {
        Check.attention("attentionForward", out, lse, q, k, v, batch, heads, kvHeads, rates, firstSequence);
        set("attentionForward", out, lse, q, k, v, null, null, null, null, batch, heads, kvHeads, scale, rates, seed,
                stream, firstSequence);
        try {
            CpuThreads.rows(batch * heads, (long) tq * tk, forwardChunk);
        } finally {
            clear();
        }
    }

    /** Sequence b, head h of {@link #attentionForward}, tile by tile, in {@code t}'s scratch. */
    private void forwardHead(int b, int h, Tiles t) {
        int group = heads / kvHeads;
        int qld = heads * dh;
        int kld = kvHeads * dh;
        int shift = tk - tq;
        float[] qa = f(q);
        float[] ka = f(k);
        float[] va = f(v);
        float[] oa = f(out);
        float[] la = f(lse);
        float[] scores = t.scores;
        boolean drop = drops[b];
        int qBase = o(q) + b * tq * qld + h * dh;
        int kBase = o(k) + b * tk * kld + (h / group) * dh;
        int vBase = o(v) + b * tk * kld + (h / group) * dh;
        int oBase = o(out) + b * tq * qld + h * dh;
        long element = ((firstSequence + b) * heads + h) * tq * (long) tk;
        for (int i0 = 0; i0 < tq; i0 += TILE) {
            int m = Math.min(TILE, tq - i0);
            int kend = shift + i0 + m;  // keys the tile's last query sees
            Blas.sgemm(false, true, m, kend, dh, scale, qa, qBase + i0 * qld, qld, ka, kBase, kld, 0f,
                    scores, 0, kend);
            for (int r = 0; r < m; r++) {
                int i = i0 + r;
                int last = shift + i;
                int at = r * kend;
                float max = Float.NEGATIVE_INFINITY;
                for (int j = 0; j <= last; j++) {
                    max = Math.max(max, scores[at + j]);
                }
                double sum = 0;
                for (int j = 0; j <= last; j++) {
                    float e = CpuActivations.exp(scores[at + j] - max);
                    scores[at + j] = e;
                    sum += e;
                }
                float inv = (float) (1 / sum);
                for (int j = 0; j <= last; j++) {
                    scores[at + j] *= inv;
                }
                for (int j = last + 1; j < kend; j++) {
                    scores[at + j] = 0f;
                }
                la[o(lse) + (b * tq + i) * heads + h] = (float) (max + Math.log(sum));
            }
            float[] p = scores;
            if (drop) {
                masks(t.keep, m, kend, i0, element, b * tq);
                for (int j = 0; j < m * kend; j++) {
                    t.dropped[j] = scores[j] * t.keep[j];
                }
                p = t.dropped;
            }
            Blas.sgemm(false, false, m, dh, kend, 1f, p, 0, kend, va, vBase, kld, 0f, oa, oBase + i0 * qld, qld);
        }
    }

    void attentionBackward(Tensor dq, Tensor dk, Tensor dv, Tensor dOut, Tensor out, Tensor lse, Tensor q, Tensor k,
                           Tensor v, int batch, int heads, int kvHeads, float scale, Tensor rates, long seed,
                           long stream, long firstSequence) {
        Check.attention("attentionBackward", out, lse, q, k, v, batch, heads, kvHeads, rates,
                firstSequence);
        Check.sameSize("attentionBackward", dOut, out);
        Check.sameSize("attentionBackward", dq, q);
        Check.sameSize("attentionBackward", dk, k);
        Check.sameSize("attentionBackward", dv, v);
        set("attentionBackward", out, lse, q, k, v, dq, dk, dv, dOut, batch, heads, kvHeads, scale, rates, seed,
                stream, firstSequence);
        try {
            java.util.Arrays.fill(f(dk), o(dk), o(dk) + dk.size(), 0f);
            java.util.Arrays.fill(f(dv), o(dv), o(dv) + dv.size(), 0f);
            // A key/value head's dk and dv take every head that shares it, in head order, on one thread.
            CpuThreads.rows(batch * kvHeads, (long) (heads / kvHeads) * tq * tk, backwardChunk);
        } finally {
            clear();
        }
    }

    /** Sequence b, head h of {@link #attentionBackward}, tile by tile, in {@code t}'s scratch. */
    private void backwardHead(int b, int h, Tiles t) {
        int group = heads / kvHeads;
        int qld = heads * dh;
        int kld = kvHeads * dh;
        int shift = tk - tq;
        float[] qa = f(q);
        float[] ka = f(k);
        float[] va = f(v);
        float[] oa = f(out);
        float[] la = f(lse);
        float[] doa = f(dOut);
        float[] dqa = f(dq);
        float[] dka = f(dk);
        float[] dva = f(dv);
        float[] scores = t.scores;
        float[] grads = t.grads;
        float[] keep = t.keep;
        boolean drop = drops[b];
        int qOff = b * tq * qld + h * dh;
        int kOff = b * tk * kld + (h / group) * dh;
        long element = ((firstSequence + b) * heads + h) * tq * (long) tk;
        for (int i0 = 0; i0 < tq; i0 += TILE) {
            int m = Math.min(TILE, tq - i0);
            int kend = shift + i0 + m;
            int qRow = qOff + i0 * qld;
            // The tile's probabilities again, from q·kᵀ and the saved log-sum-exp.
            Blas.sgemm(false, true, m, kend, dh, scale, qa, o(q) + qRow, qld, ka, o(k) + kOff, kld, 0f,
                    scores, 0, kend);
            for (int r = 0; r < m; r++) {
                int i = i0 + r;
                int last = shift + i;
                int at = r * kend;
                float l = la[o(lse) + (b * tq + i) * heads + h];
                for (int j = 0; j <= last; j++) {
                    scores[at + j] = CpuActivations.exp(scores[at + j] - l);
                }
                for (int j = last + 1; j < kend; j++) {
                    scores[at + j] = 0f;
                }
            }
            float[] p = scores;
            if (drop) {
                masks(keep, m, kend, i0, element, b * tq);
                for (int j = 0; j < m * kend; j++) {
                    t.dropped[j] = scores[j] * keep[j];
                }
                p = t.dropped;
            }
            // dv += p̃ᵀ·dOut; dp̃ = dOut·vᵀ
            Blas.sgemm(true, false, kend, dh, m, 1f, p, 0, kend, doa, o(dOut) + qRow, qld, 1f, dva,
                    o(dv) + kOff, kld);
            Blas.sgemm(false, true, m, kend, dh, 1f, doa, o(dOut) + qRow, qld, va, o(v) + kOff, kld, 0f,
                    grads, 0, kend);
            // ds = p ⊙ (dp − Σ_c dOut·out), dp = dp̃ ⊙ keep
            for (int r = 0; r < m; r++) {
                int row = qRow + r * qld;
                double dot = 0;
                for (int c = 0; c < dh; c++) {
                    dot += doa[o(dOut) + row + c] * oa[o(out) + row + c];
                }
                float dd = (float) dot;
                int at = r * kend;
                for (int j = 0; j < kend; j++) {
                    float dp = drop ? grads[at + j] * keep[at + j] : grads[at + j];
                    grads[at + j] = scores[at + j] * (dp - dd);
                }
            }
            // dq = scale·ds·k (assigned, tile by tile); dk += scale·dsᵀ·q
            Blas.sgemm(false, false, m, dh, kend, scale, grads, 0, kend, ka, o(k) + kOff, kld, 0f, dqa,
                    o(dq) + qRow, qld);
            Blas.sgemm(true, false, kend, dh, m, scale, grads, 0, kend, qa, o(q) + qRow, qld, 1f, dka,
                    o(dk) + kOff, kld);
        }
    }

    /**
     * Holds an attention call's arguments for its chunks, checks every row's dropout rate (here,
     * before any chunk runs) and grows each chunk's tile scratch.
     */
    private void set(String op, Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v, Tensor dq, Tensor dk, Tensor dv,
                     Tensor dOut, int batch, int heads, int kvHeads, float scale, Tensor rates, long seed, long stream,
                     long firstSequence) {
        this.out = out;
        this.lse = lse;
        this.q = q;
        this.k = k;
        this.v = v;
        this.dq = dq;
        this.dk = dk;
        this.dv = dv;
        this.dOut = dOut;
        this.heads = heads;
        this.kvHeads = kvHeads;
        this.scale = scale;
        this.rates = rates;
        this.seed = seed;
        this.stream = stream;
        this.firstSequence = firstSequence;
        this.tq = q.dim(0) / batch;
        this.tk = k.dim(0) / batch;
        this.dh = q.rowSize() / heads;
        if (drops.length < batch) {
            drops = new boolean[batch];
        }
        for (int b = 0; b < batch; b++) {
            drops[b] = dropsAny(op, rates, b * tq, tq);
        }
        for (int c = 0; c < tiles.length; c++) {
            if (tiles[c] == null) {
                tiles[c] = new Tiles();
            }
            tiles[c].grow(tk);
        }
    }

    private void clear() {
        out = null;
        lse = null;
        q = null;
        k = null;
        v = null;
        dq = null;
        dk = null;
        dv = null;
        dOut = null;
        rates = null;
    }

    /**
     * keep[r, j] = 1/(1 − rate) when probability (i0 + r, j) of the head survives dropout at its
     * query row's rate ({@code rates[firstRow + i0 + r]}), else 0.
     */
    private void masks(float[] keep, int m, int kend, int i0, long element, int firstRow) {
        float[] ra = f(rates);
        int[] words = Philox.scratch();
        long block = -1;
        for (int r = 0; r < m; r++) {
            float rate = ra[o(rates) + firstRow + i0 + r];
            float kept = 1f / (1f - rate);
            long first = element + (long) (i0 + r) * tk;
            for (int j = 0; j < kend; j++) {
                long g = first + j;
                if ((g >>> 2) != block) {
                    block = g >>> 2;
                    Philox.block4(seed, stream, block, words);
                }
                keep[r * kend + j] = Philox.toUnit(words[(int) (g & 3)]) >= rate ? kept : 0f;
            }
        }
    }

    /** Whether any of the rows [from, from + n) drops (each rate checked to be in [0, 1)). */
    private static boolean dropsAny(String op, Tensor rates, int from, int n) {
        if (rates == null) {
            return false;
        }
        boolean any = false;
        float[] ra = f(rates);
        for (int r = from; r < from + n; r++) {
            float p = ra[o(rates) + r];
            Check.rowRate(op, r, p);
            any |= p > 0f;
        }
        return any;
    }

    void sigmoidGateForward(Tensor y, Tensor x, Tensor g) {
        Check.sigmoidGate("sigmoidGateForward", y, x, g);
        gate(y, x, g, null, null, null);
    }

    void sigmoidGateBackward(Tensor dx, Tensor dg, Tensor dy, Tensor x, Tensor g) {
        Check.sigmoidGate("sigmoidGateBackward", dy, x, g);
        Check.sameSize("sigmoidGateBackward", dx, x);
        Check.sameSize("sigmoidGateBackward", dg, g);
        gate(null, x, g, dx, dg, dy);
    }

    // The gate call being split: forward (y set) or backward (dx, dg, dy set).
    private Tensor gateY;
    private Tensor gateX;
    private Tensor gateG;
    private Tensor gateDx;
    private Tensor gateDg;
    private Tensor gateDy;
    private final CpuThreads.Rows gateChunk = (c, from, to) -> {
        if (gateY != null) {
            gateForward(gateY, gateX, gateG, from, to);
        } else {
            gateBackward(gateDx, gateDg, gateDy, gateX, gateG, from, to);
        }
    };

    /** The gate's elements split over the threads (each element is computed alone: the same bits). */
    private void gate(Tensor y, Tensor x, Tensor g, Tensor dx, Tensor dg, Tensor dy) {
        int n = x.size();
        if (CpuThreads.chunks(n, 1) == 1) {
            if (y != null) {
                gateForward(y, x, g, 0, n);
            } else {
                gateBackward(dx, dg, dy, x, g, 0, n);
            }
            return;
        }
        gateY = y;
        gateX = x;
        gateG = g;
        gateDx = dx;
        gateDg = dg;
        gateDy = dy;
        try {
            CpuThreads.rows(n, 1, gateChunk);
        } finally {
            gateY = null;
            gateX = null;
            gateG = null;
            gateDx = null;
            gateDg = null;
            gateDy = null;
        }
    }

    /**
     * y = x ⊙ σ(g) over elements [from, to), σ through the activations' rational tanh (no call,
     * no branch): with the tensors at one offset (whole tensors, the usual case) C2 vectorises
     * the loop; at others the same arithmetic runs element by element, so the bits are the same.
     */
    private static void gateForward(Tensor y, Tensor x, Tensor g, int from, int to) {
        float[] ya = f(y);
        float[] xa = f(x);
        float[] ga = f(g);
        int at = o(y);
        if (o(x) == at && o(g) == at) {
            for (int j = at + from, end = at + to; j < end; j++) {
                ya[j] = xa[j] * CpuActivations.sigmoid(ga[j]);
            }
            return;
        }
        for (int j = from; j < to; j++) {
            ya[o(y) + j] = xa[o(x) + j] * CpuActivations.sigmoid(ga[o(g) + j]);
        }
    }

    /** The gate's backward over elements [from, to). */
    private static void gateBackward(Tensor dx, Tensor dg, Tensor dy, Tensor x, Tensor g, int from, int to) {
        float[] dxa = f(dx);
        float[] dga = f(dg);
        float[] dya = f(dy);
        float[] xa = f(x);
        float[] ga = f(g);
        int at = o(g);
        if (o(dx) == at && o(dg) == at && o(dy) == at && o(x) == at) {
            for (int j = at + from, end = at + to; j < end; j++) {
                float s = CpuActivations.sigmoid(ga[j]);
                float d = dya[j];
                dxa[j] = d * s;
                dga[j] = d * xa[j] * s * (1f - s);
            }
            return;
        }
        for (int j = from; j < to; j++) {
            float s = CpuActivations.sigmoid(ga[o(g) + j]);
            float d = dya[o(dy) + j];
            float xv = xa[o(x) + j];
            dxa[o(dx) + j] = d * s;
            dga[o(dg) + j] = d * xv * s * (1f - s);
        }
    }
}
