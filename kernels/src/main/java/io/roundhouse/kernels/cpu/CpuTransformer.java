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
 * accumulates dk and dv with GEMMs. The scratch grows once to the longest sequence.
 */
final class CpuTransformer {
    static final int TILE = 64;

    private float[] scores = new float[0];   // [TILE, Tk] probabilities
    private float[] grads = new float[0];    // [TILE, Tk] dP, then dS
    private float[] keep = new float[0];     // [TILE, Tk] dropout's keep/(1−p) or 0
    private float[] dropped = new float[0];  // [TILE, Tk] probabilities after dropout

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

    static void rope(Tensor y, Tensor x, int headDim, int period, int firstPos, float theta, boolean inverse) {
        Check.rope(y, x, headDim, period, firstPos);
        float[] ya = f(y);
        float[] xa = f(x);
        int yo = o(y);
        int xo = o(x);
        int n = x.dim(0);
        int row = x.rowSize();
        int half = headDim / 2;
        double[] invFreq = frequencies(theta, headDim);
        double sign = inverse ? -1 : 1;
        for (int r = 0; r < n; r++) {
            long pos = firstPos + r % period;
            for (int i = 0; i < half; i++) {
                double angle = pos * invFreq[i];
                float c = (float) Math.cos(angle);
                float s = (float) (sign * Math.sin(angle));
                for (int base = r * row; base < (r + 1) * row; base += headDim) {
                    float a = xa[xo + base + i];
                    float b = xa[xo + base + i + half];
                    ya[yo + base + i] = a * c - b * s;
                    ya[yo + base + i + half] = b * c + a * s;
                }
            }
        }
    }

    void attentionForward(Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v, int batch, int heads, int kvHeads,
                          float scale, Tensor rates, long seed, long stream, long firstSequence) {
        Check.attention("attentionForward", out, lse, q, k, v, batch, heads, kvHeads, rates, firstSequence);
        int tq = q.dim(0) / batch;
        int tk = k.dim(0) / batch;
        int dh = q.rowSize() / heads;
        grow(tk);
        int group = heads / kvHeads;
        int qld = heads * dh;
        int kld = kvHeads * dh;
        int shift = tk - tq;
        float[] qa = f(q);
        float[] ka = f(k);
        float[] va = f(v);
        float[] oa = f(out);
        float[] la = f(lse);
        for (int b = 0; b < batch; b++) {
            boolean drop = dropsAny("attentionForward", rates, b * tq, tq);
            for (int h = 0; h < heads; h++) {
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
                            float e = (float) Math.exp(scores[at + j] - max);
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
                        masks(m, kend, i0, tk, element, rates, b * tq, seed, stream);
                        for (int j = 0; j < m * kend; j++) {
                            dropped[j] = scores[j] * keep[j];
                        }
                        p = dropped;
                    }
                    Blas.sgemm(false, false, m, dh, kend, 1f, p, 0, kend, va, vBase, kld, 0f, oa, oBase + i0 * qld,
                            qld);
                }
            }
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
        int tq = q.dim(0) / batch;
        int tk = k.dim(0) / batch;
        int dh = q.rowSize() / heads;
        grow(tk);
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
        java.util.Arrays.fill(dka, o(dk), o(dk) + dk.size(), 0f);
        java.util.Arrays.fill(dva, o(dv), o(dv) + dv.size(), 0f);
        for (int b = 0; b < batch; b++) {
            boolean drop = dropsAny("attentionBackward", rates, b * tq, tq);
            for (int h = 0; h < heads; h++) {
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
                            scores[at + j] = (float) Math.exp(scores[at + j] - l);
                        }
                        for (int j = last + 1; j < kend; j++) {
                            scores[at + j] = 0f;
                        }
                    }
                    float[] p = scores;
                    if (drop) {
                        masks(m, kend, i0, tk, element, rates, b * tq, seed, stream);
                        for (int j = 0; j < m * kend; j++) {
                            dropped[j] = scores[j] * keep[j];
                        }
                        p = dropped;
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
        }
    }

    /**
     * keep[r, j] = 1/(1 − rate) when probability (i0 + r, j) of the head survives dropout at its
     * query row's rate ({@code rates[firstRow + i0 + r]}), else 0.
     */
    private void masks(int m, int kend, int i0, int tk, long element, Tensor rates, int firstRow, long seed,
                       long stream) {
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

    private void grow(int tk) {
        int n = TILE * tk;
        if (scores.length < n) {
            scores = new float[n];
            grads = new float[n];
            keep = new float[n];
            dropped = new float[n];
        }
    }

    static void sigmoidGateForward(Tensor y, Tensor x, Tensor g) {
        Check.sigmoidGate("sigmoidGateForward", y, x, g);
        float[] ya = f(y);
        float[] xa = f(x);
        float[] ga = f(g);
        for (int j = 0, n = x.size(); j < n; j++) {
            ya[o(y) + j] = xa[o(x) + j] * sigmoid(ga[o(g) + j]);
        }
    }

    static void sigmoidGateBackward(Tensor dx, Tensor dg, Tensor dy, Tensor x, Tensor g) {
        Check.sigmoidGate("sigmoidGateBackward", dy, x, g);
        Check.sameSize("sigmoidGateBackward", dx, x);
        Check.sameSize("sigmoidGateBackward", dg, g);
        float[] dxa = f(dx);
        float[] dga = f(dg);
        float[] dya = f(dy);
        float[] xa = f(x);
        float[] ga = f(g);
        for (int j = 0, n = x.size(); j < n; j++) {
            float s = sigmoid(ga[o(g) + j]);
            float d = dya[o(dy) + j];
            float xv = xa[o(x) + j];
            dxa[o(dx) + j] = d * s;
            dga[o(dg) + j] = d * xv * s * (1f - s);
        }
    }

    static float sigmoid(float z) {
        return z >= 0 ? 1f / (1f + (float) Math.exp(-z)) : (float) (Math.exp(z) / (1 + Math.exp(z)));
    }
}
