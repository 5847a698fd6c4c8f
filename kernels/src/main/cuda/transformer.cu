// Transformer ops: rotary position embedding, causal attention (flash-style: no T×T tensor, the
// backward rebuilds the probabilities from the saved log-sum-exp) and the sigmoid output gate, as
// io.roundhouse.kernels.cpu.CpuTransformer computes them.
//
// Legend: B sequences; Tq queries and Tk keys per sequence, query i at position Tk − Tq + i, which
// sees keys [0, Tk − Tq + i]; H query heads and Hkv key/value heads, query head h reading kv head
// h / (H/Hkv); dh the head width, at most 128. q, out, dq, dOut [B·Tq, H·dh]; k, v, dk, dv
// [B·Tk, Hkv·dh]; lse, dd [B·Tq, H]; rates [B·Tq] (one per query row), or null for no dropout. Gradients are assigned.
//
// Attention works on tiles of T queries by T keys in shared memory, 128 threads a block, in two
// phases per tile pair. Scores: element e = threadIdx.x + 128·u of the T×T tile is (query e / T,
// key e % T), so one row's T scores lie in T adjacent lanes of a warp (row max and sum are
// shuffles). Products: thread t owns row t / G of the block's output tile (a query for out and dq,
// a key for dk and dv) and its columns d = t % G + G·c, G = 128/T, accumulated in registers.
// Tile rows are padded to DMAX + 1 floats so a warp's column reads fall in distinct banks.
// The backward is deterministic: every output element has one owner that sums in a fixed order
// (no atomics), so two runs give the same bits.
#include "common.cuh"

// ---- rotary position embedding ------------------------------------------------------------------

/**
 * One thread per (row, head, pair i): elements (i, i + dh/2) of the head turn by the angle
 * pos·theta^(−2i/dh), pos = firstPos + row % period (the angle in double, as the CPU's); inverse
 * turns by minus the angle. width = H·dh. y may be x.
 */
extern "C" __global__ void rh_rope(float* y, const float* x, int rows, int width, int headDim, int period,
                                   int firstPos, float theta, int inverse) {
    int half = headDim / 2;
    int pairs = width / 2;
    RH_GRID_STRIDE(p, (long long)rows * pairs) {
        long long r = p / pairs;
        int rest = (int)(p % pairs);
        int i = rest % half;
        long long at = r * width + (long long)(rest / half) * headDim + i;
        double angle = (double)(firstPos + (int)(r % period)) * pow((double)theta, -2.0 * i / headDim);
        double sn, cs;
        sincos(angle, &sn, &cs);
        float c = (float)cs;
        float s = (float)(inverse ? -sn : sn);
        float a = x[at];
        float b = x[at + half];
        y[at] = a * c - b * s;
        y[at + half] = b * c + a * s;
    }
}

// ---- the attention output gate ------------------------------------------------------------------

/** σ(z) without overflow for large |z| (CpuTransformer.sigmoid's two branches). */
__device__ __forceinline__ float rh_stable_sigmoid(float z) {
    if (z >= 0.0f) return 1.0f / (1.0f + expf(-z));
    float e = expf(z);
    return e / (1.0f + e);
}

/** y = x ⊙ σ(g). */
extern "C" __global__ void rh_sigmoid_gate_forward(float* y, const float* x, const float* g, long long n) {
    RH_GRID_STRIDE(i, n) { y[i] = x[i] * rh_stable_sigmoid(g[i]); }
}

/** dx = dy ⊙ σ(g), dg = dy ⊙ x ⊙ σ(g)(1 − σ(g)). */
extern "C" __global__ void rh_sigmoid_gate_backward(float* dx, float* dg, const float* dy, const float* x,
                                                    const float* g, long long n) {
    RH_GRID_STRIDE(i, n) {
        float s = rh_stable_sigmoid(g[i]);
        float d = dy[i];
        float xv = x[i];
        dx[i] = d * s;
        dg[i] = d * xv * s * (1.0f - s);
    }
}

// ---- attention: tiles, dropout, shared steps ----------------------------------------------------

#define RH_ATTENTION_THREADS 128

/** The tiling for head widths up to DMAX (each kernel's shared memory stays under 48 KiB). */
template <int DMAX>
struct RhTile {
    static constexpr int T = DMAX <= 64 ? 32 : 16;            // queries and keys per tile
    static constexpr int LD = DMAX + 1;                       // a row of a [T, dh] tile
    static constexpr int PLD = T + 1;                         // a row of a [T, T] tile
    static constexpr int G = RH_ATTENTION_THREADS / T;        // threads sharing an output row
    static constexpr int C = DMAX / G;                        // columns per thread: d = g + G·c
    static constexpr int E = T * T / RH_ATTENTION_THREADS;    // score elements per thread
};

/**
 * Attention dropout of head h of sequence b: probability (i, j) is kept, scaled by 1/(1 − rate),
 * when the Philox uniform of element ((firstSequence + b)·H + h)·Tq·Tk + i·Tk + j is >= rate.
 * The one place that index is computed, for the forward and both backward kernels.
 */
struct RhDropout {
    const float* rates;         // per query row [B·Tq], or null
    long long row0;             // this sequence's first query row
    unsigned long long seed;
    unsigned long long stream;
    unsigned long long first;  // element (0, 0) of this head
    int tk;

    __device__ RhDropout(const float* rates, unsigned long long seed, unsigned long long stream,
                         long long firstSequence, int b, int h, int heads, int tq, int tk)
        : rates(rates), row0((long long)b * tq), seed(seed), stream(stream),
          first(((unsigned long long)(firstSequence + b) * heads + h) * (unsigned long long)tq * tk), tk(tk) {
    }

    /** The factor on probability (i, j): 1/(1 − rate of query row i) or 0; 1 without dropout. */
    __device__ __forceinline__ float factor(int i, int j) const {
        if (rates == nullptr) return 1.0f;
        float rate = rates[row0 + i];
        if (rate == 0.0f) return 1.0f;
        return rh_uniform(seed, stream, first + (unsigned long long)i * tk + j) >= rate ? 1.0f / (1.0f - rate) : 0.0f;
    }
};

/**
 * Rows [r0, r0 + T) of one head (src points at row 0's first column of the head; rows ld apart)
 * into a padded tile; rows at or past {@code limit} and columns past dh are 0.
 */
template <int T, int DMAX>
__device__ __forceinline__ void rh_load_tile(float* tile, const float* src, long long ld, int r0, int limit, int dh) {
    for (int e = threadIdx.x; e < T * DMAX; e += RH_ATTENTION_THREADS) {
        int r = e / DMAX;
        int d = e % DMAX;
        tile[r * (DMAX + 1) + d] = r0 + r < limit && d < dh ? src[(long long)(r0 + r) * ld + d] : 0.0f;
    }
}

/** lse and D of queries [i0, i0 + T) of head h (0 past the queries). */
template <int T>
__device__ __forceinline__ void rh_load_row_stats(float* ls, float* ds, const float* lse, const float* dd, int b,
                                                  int tq, int heads, int h, int i0) {
    if (threadIdx.x < T) {
        int i = i0 + threadIdx.x;
        long long at = ((long long)b * tq + i) * heads + h;
        ls[threadIdx.x] = i < tq ? lse[at] : 0.0f;
        ds[threadIdx.x] = i < tq ? dd[at] : 0.0f;
    }
}

/** Σ_d a[d]·b[d] over one head's columns. */
__device__ __forceinline__ float rh_dot(const float* a, const float* b, int dh) {
    float s = 0.0f;
    #pragma unroll 8
    for (int d = 0; d < dh; d++) s += a[d] * b[d];
    return s;
}

/** Max and sum over the T adjacent lanes that hold one row's scores. */
template <int T>
__device__ __forceinline__ float rh_row_max(float v) {
    #pragma unroll
    for (int o = T / 2; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

template <int T>
__device__ __forceinline__ float rh_row_sum(float v) {
    #pragma unroll
    for (int o = T / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/**
 * One probability of the backward, rebuilt: p = exp(scale·q·k − lse); returns the score's
 * gradient dS = p·(dOut·v·f − D) and sets *dropped = p·f (f the dropout factor).
 */
__device__ __forceinline__ float rh_score_grad(const float* qr, const float* kr, const float* dor, const float* vr,
                                               int dh, float scale, float lse, float dd, float f, float* dropped) {
    float p = expf(scale * rh_dot(qr, kr, dh) - lse);
    *dropped = p * f;
    return p * (rh_dot(dor, vr, dh) * f - dd);
}

// ---- attention forward --------------------------------------------------------------------------

/**
 * One block per (query tile, head, sequence): online softmax over the key tiles up to the tile's
 * last query (later ones are all masked), out = Σ p̃·v / Σ p and lse = max + log Σ p per row.
 */
template <int DMAX>
__device__ __forceinline__ void rh_attention_forward(float* out, float* lse, const float* q, const float* k,
                                                     const float* v, int tq, int tk, int heads, int kvHeads, int dh,
                                                     float scale, const float* rates, unsigned long long seed,
                                                     unsigned long long stream, long long firstSequence) {
    typedef RhTile<DMAX> A;
    constexpr int T = A::T;
    __shared__ float qs[T * A::LD];
    __shared__ float ks[T * A::LD];
    __shared__ float vs[T * A::LD];
    __shared__ float ps[T * A::PLD];  // exp(s − running max) · dropout factor
    __shared__ float rowScale[T];     // exp(old max − new max), the accumulators' rescale
    __shared__ float rowMax[T];
    __shared__ float rowSum[T];
    int b = blockIdx.z;
    int h = blockIdx.y;
    int i0 = blockIdx.x * T;
    int shift = tk - tq;
    long long qld = (long long)heads * dh;
    long long kld = (long long)kvHeads * dh;
    long long kvCol = (long long)(h / (heads / kvHeads)) * dh;
    const float* qh = q + (long long)b * tq * qld + (long long)h * dh;
    const float* kh = k + (long long)b * tk * kld + kvCol;
    const float* vh = v + (long long)b * tk * kld + kvCol;
    RhDropout drop(rates, seed, stream, firstSequence, b, h, heads, tq, tk);
    rh_load_tile<T, DMAX>(qs, qh, qld, i0, tq, dh);

    // The rows this thread scores keep their running max and sum in registers (the T lanes of a
    // row compute the same values from the same shuffles).
    float m[A::E];
    float l[A::E];
    #pragma unroll
    for (int u = 0; u < A::E; u++) {
        m[u] = -INFINITY;
        l[u] = 0.0f;
    }
    float acc[A::C];
    #pragma unroll
    for (int c = 0; c < A::C; c++) acc[c] = 0.0f;
    int r = threadIdx.x / A::G;
    int g = threadIdx.x % A::G;
    int keys = shift + min(i0 + T, tq);  // the keys the tile's last query sees
    for (int j0 = 0; j0 < keys; j0 += T) {
        __syncthreads();  // the previous tiles of k, v and p are used up
        rh_load_tile<T, DMAX>(ks, kh, kld, j0, tk, dh);
        rh_load_tile<T, DMAX>(vs, vh, kld, j0, tk, dh);
        __syncthreads();
        #pragma unroll
        for (int u = 0; u < A::E; u++) {
            int e = threadIdx.x + u * RH_ATTENTION_THREADS;
            int qi = e / T;
            int kj = e % T;
            int i = min(i0 + qi, tq - 1);  // a row past the queries stands in for the last (never written)
            int j = j0 + kj;
            bool seen = j <= shift + i;    // key 0 is seen by every row: the max is finite from tile 0 on
            float s = seen ? scale * rh_dot(qs + qi * A::LD, ks + kj * A::LD, dh) : -INFINITY;
            float mNew = fmaxf(m[u], rh_row_max<T>(s));
            float p = seen ? expf(s - mNew) : 0.0f;
            float rescale = expf(m[u] - mNew);
            l[u] = l[u] * rescale + rh_row_sum<T>(p);
            m[u] = mNew;
            ps[qi * A::PLD + kj] = seen ? p * drop.factor(i, j) : 0.0f;
            if (kj == 0) rowScale[qi] = rescale;
        }
        __syncthreads();
        float rescale = rowScale[r];
        float pr[T];
        #pragma unroll
        for (int kj = 0; kj < T; kj++) pr[kj] = ps[r * A::PLD + kj];
        #pragma unroll
        for (int c = 0; c < A::C; c++) {
            if (c * A::G >= dh) break;
            float a = acc[c] * rescale;
            #pragma unroll
            for (int kj = 0; kj < T; kj++) a += pr[kj] * vs[kj * A::LD + g + A::G * c];
            acc[c] = a;
        }
    }
    #pragma unroll
    for (int u = 0; u < A::E; u++) {
        int e = threadIdx.x + u * RH_ATTENTION_THREADS;
        if (e % T == 0) {
            rowMax[e / T] = m[u];
            rowSum[e / T] = l[u];
        }
    }
    __syncthreads();
    int i = i0 + r;
    if (i >= tq) return;
    float inv = 1.0f / rowSum[r];
    float* o = out + ((long long)b * tq + i) * qld + (long long)h * dh;
    #pragma unroll
    for (int c = 0; c < A::C; c++) {
        int d = g + A::G * c;
        if (d < dh) o[d] = acc[c] * inv;
    }
    if (g == 0) lse[((long long)b * tq + i) * heads + h] = rowMax[r] + logf(rowSum[r]);
}

// ---- attention backward -------------------------------------------------------------------------

/** dd[r, h] = Σ_d dOut·out over head h of row r (the backward's D): one thread per (row, head). */
extern "C" __global__ void rh_attention_row_dots(float* dd, const float* dOut, const float* out, int rows, int heads,
                                                 int dh) {
    RH_GRID_STRIDE(e, (long long)rows * heads) {
        const float* a = dOut + e * dh;
        const float* o = out + e * dh;
        double s = 0;
        for (int d = 0; d < dh; d++) s += a[d] * o[d];
        dd[e] = (float)s;
    }
}

/**
 * dK and dV: one block per (key tile, kv head, sequence), over the query heads of its group and
 * the query tiles that see its keys, in order: dV = Σ p̃ᵀ·dOut, dK = scale·Σ dSᵀ·q.
 */
template <int DMAX>
__device__ __forceinline__ void rh_attention_backward_kv(float* dk, float* dv, const float* dOut, const float* lse,
                                                         const float* dd, const float* q, const float* k,
                                                         const float* v, int tq, int tk, int heads, int kvHeads,
                                                         int dh, float scale, const float* rates,
                                                         unsigned long long seed, unsigned long long stream,
                                                         long long firstSequence) {
    typedef RhTile<DMAX> A;
    constexpr int T = A::T;
    __shared__ float ks[T * A::LD];
    __shared__ float vs[T * A::LD];
    __shared__ float qs[T * A::LD];
    __shared__ float dos[T * A::LD];
    __shared__ float ps[T * A::PLD];   // p̃ of the tile pair
    __shared__ float dss[T * A::PLD];  // dS of the tile pair
    __shared__ float ls[T];
    __shared__ float ds[T];
    int b = blockIdx.z;
    int hkv = blockIdx.y;
    int j0 = blockIdx.x * T;
    int group = heads / kvHeads;
    int shift = tk - tq;
    long long qld = (long long)heads * dh;
    long long kld = (long long)kvHeads * dh;
    long long kvAt = (long long)b * tk * kld + (long long)hkv * dh;
    rh_load_tile<T, DMAX>(ks, k + kvAt, kld, j0, tk, dh);
    rh_load_tile<T, DMAX>(vs, v + kvAt, kld, j0, tk, dh);
    float dK[A::C];
    float dV[A::C];
    #pragma unroll
    for (int c = 0; c < A::C; c++) {
        dK[c] = 0.0f;
        dV[c] = 0.0f;
    }
    int r = threadIdx.x / A::G;
    int g = threadIdx.x % A::G;
    int firstTile = max(0, j0 - shift) / T * T;  // the first query tile that sees key j0
    for (int h = hkv * group; h < (hkv + 1) * group; h++) {
        long long qAt = (long long)b * tq * qld + (long long)h * dh;
        RhDropout drop(rates, seed, stream, firstSequence, b, h, heads, tq, tk);
        for (int i0 = firstTile; i0 < tq; i0 += T) {
            __syncthreads();  // the previous tiles of q, dOut, p̃ and dS are used up
            rh_load_tile<T, DMAX>(qs, q + qAt, qld, i0, tq, dh);
            rh_load_tile<T, DMAX>(dos, dOut + qAt, qld, i0, tq, dh);
            rh_load_row_stats<T>(ls, ds, lse, dd, b, tq, heads, h, i0);
            __syncthreads();
            #pragma unroll
            for (int u = 0; u < A::E; u++) {
                int e = threadIdx.x + u * RH_ATTENTION_THREADS;
                int qi = e / T;
                int kj = e % T;
                int i = i0 + qi;
                int j = j0 + kj;
                float dropped = 0.0f;
                float dS = 0.0f;
                if (i < tq && j <= shift + i) {
                    dS = rh_score_grad(qs + qi * A::LD, ks + kj * A::LD, dos + qi * A::LD, vs + kj * A::LD, dh, scale,
                                       ls[qi], ds[qi], drop.factor(i, j), &dropped);
                }
                ps[qi * A::PLD + kj] = dropped;
                dss[qi * A::PLD + kj] = dS;
            }
            __syncthreads();
            for (int qi = 0; qi < T; qi++) {
                float pt = ps[qi * A::PLD + r];
                float dS = dss[qi * A::PLD + r];
                #pragma unroll
                for (int c = 0; c < A::C; c++) {
                    if (c * A::G >= dh) break;
                    dV[c] += pt * dos[qi * A::LD + g + A::G * c];
                    dK[c] += dS * qs[qi * A::LD + g + A::G * c];
                }
            }
        }
    }
    int j = j0 + r;
    if (j >= tk) return;
    long long at = kvAt + (long long)j * kld;
    #pragma unroll
    for (int c = 0; c < A::C; c++) {
        int d = g + A::G * c;
        if (d < dh) {
            dk[at + d] = scale * dK[c];
            dv[at + d] = dV[c];
        }
    }
}

/** dQ: one block per (query tile, head, sequence), over the key tiles its queries see: dQ = scale·Σ dS·k. */
template <int DMAX>
__device__ __forceinline__ void rh_attention_backward_q(float* dq, const float* dOut, const float* lse,
                                                        const float* dd, const float* q, const float* k,
                                                        const float* v, int tq, int tk, int heads, int kvHeads,
                                                        int dh, float scale, const float* rates,
                                                        unsigned long long seed, unsigned long long stream,
                                                        long long firstSequence) {
    typedef RhTile<DMAX> A;
    constexpr int T = A::T;
    __shared__ float qs[T * A::LD];
    __shared__ float dos[T * A::LD];
    __shared__ float ks[T * A::LD];
    __shared__ float vs[T * A::LD];
    __shared__ float dss[T * A::PLD];
    __shared__ float ls[T];
    __shared__ float ds[T];
    int b = blockIdx.z;
    int h = blockIdx.y;
    int i0 = blockIdx.x * T;
    int shift = tk - tq;
    long long qld = (long long)heads * dh;
    long long kld = (long long)kvHeads * dh;
    long long qAt = (long long)b * tq * qld + (long long)h * dh;
    long long kvAt = (long long)b * tk * kld + (long long)(h / (heads / kvHeads)) * dh;
    RhDropout drop(rates, seed, stream, firstSequence, b, h, heads, tq, tk);
    rh_load_tile<T, DMAX>(qs, q + qAt, qld, i0, tq, dh);
    rh_load_tile<T, DMAX>(dos, dOut + qAt, qld, i0, tq, dh);
    rh_load_row_stats<T>(ls, ds, lse, dd, b, tq, heads, h, i0);
    float dQ[A::C];
    #pragma unroll
    for (int c = 0; c < A::C; c++) dQ[c] = 0.0f;
    int r = threadIdx.x / A::G;
    int g = threadIdx.x % A::G;
    int keys = shift + min(i0 + T, tq);
    for (int j0 = 0; j0 < keys; j0 += T) {
        __syncthreads();  // the previous tiles of k, v and dS are used up
        rh_load_tile<T, DMAX>(ks, k + kvAt, kld, j0, tk, dh);
        rh_load_tile<T, DMAX>(vs, v + kvAt, kld, j0, tk, dh);
        __syncthreads();
        #pragma unroll
        for (int u = 0; u < A::E; u++) {
            int e = threadIdx.x + u * RH_ATTENTION_THREADS;
            int qi = e / T;
            int kj = e % T;
            int i = i0 + qi;
            int j = j0 + kj;
            float dropped;
            float dS = 0.0f;
            if (i < tq && j <= shift + i) {
                dS = rh_score_grad(qs + qi * A::LD, ks + kj * A::LD, dos + qi * A::LD, vs + kj * A::LD, dh, scale,
                                   ls[qi], ds[qi], drop.factor(i, j), &dropped);
            }
            dss[qi * A::PLD + kj] = dS;
        }
        __syncthreads();
        for (int kj = 0; kj < T; kj++) {
            float dS = dss[r * A::PLD + kj];
            #pragma unroll
            for (int c = 0; c < A::C; c++) {
                if (c * A::G >= dh) break;
                dQ[c] += dS * ks[kj * A::LD + g + A::G * c];
            }
        }
    }
    int i = i0 + r;
    if (i >= tq) return;
    long long at = qAt + (long long)i * qld;
    #pragma unroll
    for (int c = 0; c < A::C; c++) {
        int d = g + A::G * c;
        if (d < dh) dq[at + d] = scale * dQ[c];
    }
}

// ---- the kernels: head widths up to 64 (tiles of 32) and up to 128 (tiles of 16) ----------------
// Grids: forward and dQ (ceil(Tq/T), H, B), dK/dV (ceil(Tk/T), Hkv, B); 128 threads a block.

extern "C" __global__ void __launch_bounds__(128) rh_attention_forward_dh64(
        float* out, float* lse, const float* q, const float* k, const float* v, int tq, int tk, int heads,
        int kvHeads, int dh, float scale, const float* rates, unsigned long long seed, unsigned long long stream,
        long long firstSequence) {
    rh_attention_forward<64>(out, lse, q, k, v, tq, tk, heads, kvHeads, dh, scale, rates, seed, stream,
                             firstSequence);
}

extern "C" __global__ void __launch_bounds__(128) rh_attention_forward_dh128(
        float* out, float* lse, const float* q, const float* k, const float* v, int tq, int tk, int heads,
        int kvHeads, int dh, float scale, const float* rates, unsigned long long seed, unsigned long long stream,
        long long firstSequence) {
    rh_attention_forward<128>(out, lse, q, k, v, tq, tk, heads, kvHeads, dh, scale, rates, seed, stream,
                              firstSequence);
}

extern "C" __global__ void __launch_bounds__(128) rh_attention_backward_kv_dh64(
        float* dk, float* dv, const float* dOut, const float* lse, const float* dd, const float* q, const float* k,
        const float* v, int tq, int tk, int heads, int kvHeads, int dh, float scale, const float* rates,
        unsigned long long seed, unsigned long long stream, long long firstSequence) {
    rh_attention_backward_kv<64>(dk, dv, dOut, lse, dd, q, k, v, tq, tk, heads, kvHeads, dh, scale, rates, seed,
                                 stream, firstSequence);
}

extern "C" __global__ void __launch_bounds__(128) rh_attention_backward_kv_dh128(
        float* dk, float* dv, const float* dOut, const float* lse, const float* dd, const float* q, const float* k,
        const float* v, int tq, int tk, int heads, int kvHeads, int dh, float scale, const float* rates,
        unsigned long long seed, unsigned long long stream, long long firstSequence) {
    rh_attention_backward_kv<128>(dk, dv, dOut, lse, dd, q, k, v, tq, tk, heads, kvHeads, dh, scale, rates, seed,
                                  stream, firstSequence);
}

extern "C" __global__ void __launch_bounds__(128) rh_attention_backward_q_dh64(
        float* dq, const float* dOut, const float* lse, const float* dd, const float* q, const float* k,
        const float* v, int tq, int tk, int heads, int kvHeads, int dh, float scale, const float* rates,
        unsigned long long seed, unsigned long long stream, long long firstSequence) {
    rh_attention_backward_q<64>(dq, dOut, lse, dd, q, k, v, tq, tk, heads, kvHeads, dh, scale, rates, seed, stream,
                                firstSequence);
}

extern "C" __global__ void __launch_bounds__(128) rh_attention_backward_q_dh128(
        float* dq, const float* dOut, const float* lse, const float* dd, const float* q, const float* k,
        const float* v, int tq, int tk, int heads, int kvHeads, int dh, float scale, const float* rates,
        unsigned long long seed, unsigned long long stream, long long firstSequence) {
    rh_attention_backward_q<128>(dq, dOut, lse, dd, q, k, v, tq, tk, heads, kvHeads, dh, scale, rates, seed, stream,
                                 firstSequence);
}
