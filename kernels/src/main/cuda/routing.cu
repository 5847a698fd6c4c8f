// Routing on the GPU: gating (softmax, top-k with ties to the lower index, the three gate modes;
// the sigmoid router's biased top-k) and its backward, permute / un-permute and their backwards, the router statistics' column sums
// and the router losses' gradients. The capacity plan (a sequential priority order) stays on the
// host. One thread per row where a row's work is small (E and K are small); grid-stride elsewhere.
#include "common.cuh"

#define MODE_SOFTMAX_TOPK 0
#define MODE_SOFTMAX_TOPK_RENORM 1
#define MODE_TOPK_SOFTMAX 2

extern "C" __global__ void rh_gate_forward(float* probs, float* lse, int* topIdx, float* gates, const float* logits,
                                           int n, int e, int k, int mode) {
    int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= n) return;
    const float* l = logits + (long long)r * e;
    float* p = probs + (long long)r * e;
    int* idx = topIdx + (long long)r * k;
    float* g = gates + (long long)r * k;
    float mx = -INFINITY;
    for (int j = 0; j < e; j++) mx = fmaxf(mx, l[j]);
    double sum = 0;
    for (int j = 0; j < e; j++) {
        float v = expf(l[j] - mx);
        p[j] = v;
        sum += v;
    }
    float inv = (float)(1.0 / sum);
    for (int j = 0; j < e; j++) p[j] *= inv;
    lse[r] = mx + (float)log(sum);
    for (int s = 0; s < k; s++) {
        int best = -1;
        for (int j = 0; j < e; j++) {
            bool chosen = false;
            for (int q = 0; q < s; q++) chosen |= idx[q] == j;
            if (chosen) continue;
            if (best < 0 || l[j] > l[best]) best = j;
        }
        idx[s] = best;
    }
    if (mode == MODE_SOFTMAX_TOPK) {
        for (int s = 0; s < k; s++) g[s] = p[idx[s]];
    } else if (mode == MODE_SOFTMAX_TOPK_RENORM) {
        double t = 0;
        for (int s = 0; s < k; s++) t += p[idx[s]];
        for (int s = 0; s < k; s++) g[s] = (float)(p[idx[s]] / t);
    } else {
        float top = l[idx[0]];
        double t = 0;
        for (int s = 0; s < k; s++) {
            float v = expf(l[idx[s]] - top);
            g[s] = v;
            t += v;
        }
        for (int s = 0; s < k; s++) g[s] = (float)(g[s] / t);
    }
}

extern "C" __global__ void rh_gate_backward(float* dLogits, const float* dGates, const float* dProbs, const float* dLse,
                                            const float* probs, const int* topIdx, const float* gates, int n, int e,
                                            int k, int mode) {
    int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= n) return;
    float* dl = dLogits + (long long)r * e;
    const float* p = probs + (long long)r * e;
    const int* idx = topIdx + (long long)r * k;
    const float* g = gates + (long long)r * k;
    const float* dg = dGates + (long long)r * k;
    for (int j = 0; j < e; j++) dl[j] = 0.0f;
    if (mode == MODE_SOFTMAX_TOPK) {
        double s = 0;
        for (int q = 0; q < k; q++) s += dg[q] * p[idx[q]];
        for (int j = 0; j < e; j++) dl[j] = (float)(-p[j] * s);
        for (int q = 0; q < k; q++) dl[idx[q]] += p[idx[q]] * dg[q];
    } else {
        double s = 0;
        for (int q = 0; q < k; q++) s += g[q] * dg[q];
        for (int q = 0; q < k; q++) dl[idx[q]] = (float)(g[q] * (dg[q] - s));
    }
    if (dProbs != 0) {
        const float* dp = dProbs + (long long)r * e;
        double s = 0;
        for (int j = 0; j < e; j++) s += dp[j] * p[j];
        for (int j = 0; j < e; j++) dl[j] += (float)(p[j] * (dp[j] - s));
    }
    if (dLse != 0) {
        float d = dLse[r];
        for (int j = 0; j < e; j++) dl[j] += d * p[j];
    }
}

__device__ inline float rh_sigmoid(float x) {
    return x >= 0.0f ? 1.0f / (1.0f + expf(-x)) : expf(x) / (1.0f + expf(x));
}

/** The sigmoid router (DeepSeek-V3): see Backend.sigmoidTopKForward. One thread per row. */
extern "C" __global__ void rh_sigmoid_topk_forward(float* probs, float* lse, int* topIdx, float* gates,
                                                   const float* logits, const float* bias, int n, int e, int k) {
    int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= n) return;
    const float* l = logits + (long long)r * e;
    float* p = probs + (long long)r * e;
    int* idx = topIdx + (long long)r * k;
    float* g = gates + (long long)r * k;
    float mx = -INFINITY;
    for (int j = 0; j < e; j++) mx = fmaxf(mx, l[j]);
    double sum = 0;
    for (int j = 0; j < e; j++) sum += expf(l[j] - mx);
    lse[r] = mx + (float)log(sum);
    double total = 0;
    for (int j = 0; j < e; j++) {
        p[j] = rh_sigmoid(l[j]);
        total += p[j];
    }
    for (int s = 0; s < k; s++) {
        int best = -1;
        for (int j = 0; j < e; j++) {
            bool chosen = false;
            for (int q = 0; q < s; q++) chosen |= idx[q] == j;
            if (chosen) continue;
            if (best < 0 || p[j] + bias[j] > p[best] + bias[best]) best = j;
        }
        idx[s] = best;
    }
    double picked = 0;
    for (int s = 0; s < k; s++) picked += p[idx[s]];
    for (int s = 0; s < k; s++) g[s] = (float)(p[idx[s]] / picked);
    float inv = (float)(1.0 / total);
    for (int j = 0; j < e; j++) p[j] *= inv;
}

/**
 * Backward of rh_sigmoid_topk_forward: dLogits (assigned) from dGates and, when non-null, dProbs
 * and dLse. One thread per row (E and K are small), recomputing each score where it is needed
 * (no per-row scratch).
 */
extern "C" __global__ void rh_sigmoid_topk_backward(float* dLogits, const float* dGates, const float* dProbs,
                                                    const float* dLse, const float* logits, const float* lse,
                                                    const int* topIdx, const float* gates, int n, int e, int k) {
    int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= n) return;
    const float* l = logits + (long long)r * e;
    const int* idx = topIdx + (long long)r * k;
    const float* g = gates + (long long)r * k;
    const float* dg = dGates + (long long)r * k;
    float* dl = dLogits + (long long)r * e;
    double total = 0;
    for (int j = 0; j < e; j++) total += rh_sigmoid(l[j]);
    double picked = 0;
    double dot = 0;
    for (int q = 0; q < k; q++) {
        picked += rh_sigmoid(l[idx[q]]);
        dot += dg[q] * g[q];
    }
    double pdot = 0;
    if (dProbs != 0) {
        const float* dp = dProbs + (long long)r * e;
        for (int j = 0; j < e; j++) pdot += dp[j] * (rh_sigmoid(l[j]) / total);
    }
    for (int j = 0; j < e; j++) {
        double s = rh_sigmoid(l[j]);
        double ds = 0;
        for (int q = 0; q < k; q++) {
            if (idx[q] == j) ds += (dg[q] - dot) / picked;
        }
        if (dProbs != 0) ds += (dProbs[(long long)r * e + j] - pdot) / total;
        double v = ds * s * (1 - s);
        if (dLse != 0) v += dLse[r] * exp((double)l[j] - lse[r]);
        dl[j] = (float)v;
    }
}

/** out[r] = −Σ_j p_j·ln p_j of row r of probs[N,E] (0·ln 0 = 0); one thread per row. */
extern "C" __global__ void rh_row_entropy(float* out, const float* probs, int n, int e) {
    int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= n) return;
    const float* p = probs + (long long)r * e;
    double h = 0;
    for (int j = 0; j < e; j++) {
        if (p[j] > 0.0f) h -= p[j] * log((double)p[j]);
    }
    out[r] = (float)h;
}

/** xp[r, :] = x[rowToken[r], :] for the m kept copies. */
/** copies[i] = gates[i] >= threshold ? topIdx[i] : -1 over the n*k slots. */
extern "C" __global__ void rh_select_at_least(int* copies, const int* topIdx, const float* gates, float threshold,
                                              int slots) {
    RH_GRID_STRIDE(i, (long long)slots) {
        copies[i] = gates[i] >= threshold ? topIdx[i] : -1;
    }
}

extern "C" __global__ void rh_permute_forward(float* xp, const float* x, const int* rowToken, int m, int d) {
    RH_GRID_STRIDE(i, (long long)m * d) {
        long long r = i / d;
        xp[i] = x[(long long)rowToken[r] * d + i % d];
    }
}

/*
 * The un-permute's token → rows table, built on the device (no copy through the host): rows by
 * token in row order (a stable counting sort). rh_token_rows_rank gives each row its place among
 * its token's rows and counts the rows of each token (count zeroed first), rh_token_rows_starts
 * turns the counts into each token's first slot, rh_token_rows_fill places the rows, and
 * rh_permute_backward sums them. Tokens outside [0, n) are left out, as on the CPU.
 */

/** rank[r] = rows before r with r's token; count[t] += 1 for r's token t. One thread per row. */
extern "C" __global__ void rh_token_rows_rank(int* rank, int* count, const int* rowToken, int m, int n) {
    int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= m) return;
    int t = rowToken[r];
    if (t < 0 || t >= n) return;
    int c = 0;
    for (int q = 0; q < r; q++) c += rowToken[q] == t;
    rank[r] = c;
    atomicAdd(&count[t], 1);
}

/** start[t] = rows of tokens before t, start[n] = every row: one block; each thread a run of tokens. */
extern "C" __global__ void __launch_bounds__(1024) rh_token_rows_starts(int* start, const int* count, int n) {
    __shared__ int part[1024];
    int tid = threadIdx.x;
    int per = (n + blockDim.x - 1) / blockDim.x;
    int lo = min(n, tid * per);
    int hi = min(n, lo + per);
    int s = 0;
    for (int t = lo; t < hi; t++) s += count[t];
    part[tid] = s;
    __syncthreads();
    for (int off = 1; off < blockDim.x; off <<= 1) {
        int v = tid >= off ? part[tid - off] : 0;
        __syncthreads();
        part[tid] += v;
        __syncthreads();
    }
    int base = tid == 0 ? 0 : part[tid - 1];
    for (int t = lo; t < hi; t++) {
        start[t] = base;
        base += count[t];
    }
    if (tid == blockDim.x - 1) start[n] = part[tid];
}

/** rows[start[t] + rank[r]] = r for each row r of token t. */
extern "C" __global__ void rh_token_rows_fill(int* rows, const int* start, const int* rank, const int* rowToken,
                                              int m, int n) {
    RH_GRID_STRIDE(r, (long long)m) {
        int t = rowToken[r];
        if (t >= 0 && t < n) rows[start[t] + rank[r]] = (int)r;
    }
}

/** dx[t, :] = sum of dxp over t's rows rows[start[t] .. start[t + 1]), in row order (0 for none). */
extern "C" __global__ void rh_permute_backward(float* dx, const float* dxp, const int* rows, const int* start, int n,
                                               int d) {
    RH_GRID_STRIDE(i, (long long)n * d) {
        long long t = i / d;
        int j = (int)(i % d);
        float s = 0.0f;
        for (int c = start[t]; c < start[t + 1]; c++) s += dxp[(long long)rows[c] * d + j];
        dx[i] = s;
    }
}

/** y[t, :] = sum over t's kept copies of gate * yp[row, :] (gates null: weight 1). */
extern "C" __global__ void rh_unpermute_forward(float* y, const float* yp, const int* copyRow, const float* gates,
                                                int n, int d, int k) {
    RH_GRID_STRIDE(i, (long long)n * d) {
        long long t = i / d;
        int j = (int)(i % d);
        float s = 0.0f;
        for (int q = 0; q < k; q++) {
            int row = copyRow[t * k + q];
            if (row < 0) continue;
            float w = gates == 0 ? 1.0f : gates[t * k + q];
            s += w * yp[(long long)row * d + j];
        }
        y[i] = s;
    }
}

/** dyp[row, :] = gate * dy[t, :] for every kept copy. */
extern "C" __global__ void rh_unpermute_backward_rows(float* dyp, const float* dy, const int* copyRow,
                                                      const float* gates, int n, int d, int k) {
    RH_GRID_STRIDE(i, (long long)n * k * d) {
        long long c = i / d;
        int j = (int)(i % d);
        int row = copyRow[c];
        if (row < 0) continue;
        float w = gates == 0 ? 1.0f : gates[c];
        dyp[(long long)row * d + j] = w * dy[(c / k) * d + j];
    }
}

/** dGates[t, q] = dy[t, :] . yp[row, :] (0 for a dropped copy). */
extern "C" __global__ void rh_unpermute_backward_gates(float* dGates, const float* dy, const float* yp,
                                                       const int* copyRow, int n, int d, int k) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= n * k) return;
    int row = copyRow[c];
    if (row < 0) {
        dGates[c] = 0.0f;
        return;
    }
    const float* a = dy + (long long)(c / k) * d;
    const float* b = yp + (long long)row * d;
    double s = 0;
    for (int j = 0; j < d; j++) s += a[j] * b[j];
    dGates[c] = (float)s;
}

/** out[c] = sum_r x[r, c] in double, rounded (the router's probability sums). */
extern "C" __global__ void rh_column_sums_double(float* out, const float* x, int rows, int cols) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    double s = 0;
    for (int r = 0; r < rows; r++) s += x[(long long)r * cols + c];
    out[c] = (float)s;
}

/** dProbs[r, j] = column[j]; dLse[r] = zScale * lse[r]. */
extern "C" __global__ void rh_router_loss_backward(float* dProbs, float* dLse, const float* lse, const float* column,
                                                   int n, int e, float zScale) {
    RH_GRID_STRIDE(i, (long long)n * e) {
        dProbs[i] = column[i % e];
        if (i % e == 0) dLse[i / e] = zScale * lse[i / e];
    }
}

// The capacity plan without a sequential pass: copy p = s*n + r (choice s of token r) has priority
// p; its rank is the number of higher-priority copies of the same expert, so an expert keeps the
// copies of rank < capacity and fills its group in priority order, as the CPU plan does.

/** rank[p] = #{p' < p : expert(p') == expert(p)}, one thread per copy (m = n*k copies). */
extern "C" __global__ void rh_plan_rank(int* rank, const int* topIdx, int n, int k) {
    int p = blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= n * k) return;
    int e = topIdx[(p % n) * k + p / n];
    int c = 0;
    if (e >= 0) {
        for (int q = 0; q < p; q++) c += topIdx[(q % n) * k + q / n] == e;
    }
    rank[p] = c;
}

/**
 * counts[0, E) = copies choosing each expert (before the limit), counts[E, 2E) = copies kept; an
 * expert index outside [0, E) sets *bad to its token + 1. One thread per expert.
 */
extern "C" __global__ void rh_plan_counts(int* counts, const int* topIdx, int n, int k, int experts, int capacity,
                                          int* bad) {
    int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= experts) return;
    int c = 0;
    for (int i = 0; i < n * k; i++) {
        int x = topIdx[i];
        if (e == 0 && (x < -1 || x >= experts)) atomicCAS(bad, 0, i / k + 1);
        c += x == e;
    }
    counts[e] = c;
    counts[experts + e] = capacity > 0 && c > capacity ? capacity : c;
}

/** copyRow[r, s] = the copy's row (offsets[e] + rank) or -1 when dropped; rowToken[row] = r. */
extern "C" __global__ void rh_plan_fill(int* rowToken, int* copyRow, const int* rank, const int* topIdx,
                                        const int* offsets, int n, int k, int capacity) {
    int p = blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= n * k) return;
    int r = p % n;
    int s = p / n;
    int e = topIdx[r * k + s];
    int rk = rank[p];
    if (e < 0 || (capacity > 0 && rk >= capacity)) {
        copyRow[r * k + s] = -1;
        return;
    }
    int row = offsets[e] + rk;
    copyRow[r * k + s] = row;
    rowToken[row] = r;
}
