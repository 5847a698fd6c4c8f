// The noisy top-k router (Shazeer et al. 2017) on the GPU, as CpuNoisyRouting computes it: the
// noisy logits clean + eps * softplus(raw) with eps = rh_normal (Philox.normal's numbers), the
// smooth load estimate Phi((clean - thr) / softplus(raw)) and its backward, the importance
// statistic's per-expert gate sums and their adjoint. N tokens, E experts, K slots per token.
// Ranking: a precedes b when noisy_a > noisy_b, or they are equal and a < b. The load ops take one
// thread per row (E is small: tens to a few hundred), so a row's threshold gradients add up in
// that thread, without atomics.
#include "common.cuh"

__device__ __forceinline__ float rh_softplus(float x) {
    return log1pf(expf(-fabsf(x))) + fmaxf(x, 0.0f);
}

__device__ __forceinline__ float rh_noisy_sigmoid(float x) {
    return x >= 0.0f ? 1.0f / (1.0f + expf(-x)) : expf(x) / (1.0f + expf(x));
}

/** noisy[i] = clean[i] + eps_i * softplus(raw[i]), eps_i = rh_normal(seed, stream, first + i). */
extern "C" __global__ void rh_noisy_logits_forward(float* noisy, const float* clean, const float* raw,
                                                   unsigned long long seed, unsigned long long stream,
                                                   unsigned long long first, long long n) {
    RH_GRID_STRIDE(i, n) {
        noisy[i] = clean[i] + rh_normal(seed, stream, first + i) * rh_softplus(raw[i]);
    }
}

/** dRaw[i] = dNoisy[i] * eps_i * sigmoid(raw[i]) (assigned), eps_i drawn again. */
extern "C" __global__ void rh_noisy_logits_backward(float* dRaw, const float* dNoisy, const float* raw,
                                                    unsigned long long seed, unsigned long long stream,
                                                    unsigned long long first, long long n) {
    RH_GRID_STRIDE(i, n) {
        dRaw[i] = dNoisy[i] * rh_normal(seed, stream, first + i) * rh_noisy_sigmoid(raw[i]);
    }
}

__device__ __forceinline__ bool rh_precedes(const float* v, int a, int b) {
    return v[a] > v[b] || (v[a] == v[b] && a < b);
}

/** The expert right after prev in the ranking of row v (prev -1: the first). */
__device__ int rh_after(const float* v, int e, int prev) {
    int best = -1;
    for (int j = 0; j < e; j++) {
        if ((prev < 0 || rh_precedes(v, prev, j)) && (best < 0 || rh_precedes(v, j, best))) best = j;
    }
    return best;
}

/** *out = the expert at rank k - 1, *in = the one at rank k (k < E). */
__device__ void rh_thresholds(const float* v, int e, int k, int* out, int* in) {
    int x = rh_after(v, e, -1);
    for (int s = 1; s < k; s++) x = rh_after(v, e, x);
    *out = x;
    *in = rh_after(v, e, x);
}

/** load[r, j] = Phi((clean - thr) / softplus(raw)); k < E (the host fills 1 otherwise). One thread per row. */
extern "C" __global__ void rh_noisy_topk_load_forward(float* load, const float* clean, const float* noisy,
                                                      const float* raw, int n, int e, int k) {
    int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= n) return;
    long long at = (long long)r * e;
    const float* v = noisy + at;
    int out, in;
    rh_thresholds(v, e, k, &out, &in);
    for (int j = 0; j < e; j++) {
        int thr = rh_precedes(v, j, in) ? in : out;
        float z = (clean[at + j] - v[thr]) / rh_softplus(raw[at + j]);
        load[at + j] = normcdff(z);
    }
}

/**
 * Accumulates the gradient of sum dLoad * load into dClean, dNoisy (the threshold experts') and
 * dRaw; the ranking is held fixed. k < E (the host launches nothing otherwise). One thread per row.
 */
extern "C" __global__ void rh_noisy_topk_load_backward(float* dClean, float* dNoisy, float* dRaw, const float* dLoad,
                                                       const float* clean, const float* noisy, const float* raw,
                                                       int n, int e, int k) {
    int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= n) return;
    long long at = (long long)r * e;
    const float* v = noisy + at;
    int out, in;
    rh_thresholds(v, e, k, &out, &in);
    double dIn = 0;
    double dOut = 0;
    for (int j = 0; j < e; j++) {
        float x = raw[at + j];
        float sigma = rh_softplus(x);
        int thr = rh_precedes(v, j, in) ? in : out;
        float z = (clean[at + j] - v[thr]) / sigma;
        float g = dLoad[at + j] * 0.3989422804014327f * expf(-0.5f * z * z) / sigma;
        dClean[at + j] += g;
        dRaw[at + j] += -g * z * rh_noisy_sigmoid(x);
        if (thr == in) {
            dIn -= g;
        } else {
            dOut -= g;
        }
    }
    dNoisy[at + in] += (float)dIn;
    dNoisy[at + out] += (float)dOut;
}

/**
 * sums[e] = the gates of the slots that chose expert e, in double: one block of 256 threads per
 * expert, each summing a stride of the count = N*K slots, then a fixed-order tree (deterministic).
 * Negative indices are skipped; one >= E sets *bad to its slot + 1.
 */
extern "C" __global__ void __launch_bounds__(256) rh_expert_gate_sums(float* sums, const int* topIdx, const float* gates, long long count,
                                               int experts, int* bad) {
    __shared__ double s[256];
    int e = blockIdx.x;
    double v = 0;
    for (long long c = threadIdx.x; c < count; c += blockDim.x) {
        int x = topIdx[c];
        if (x == e) v += gates[c];
        if (e == 0 && x >= experts) atomicCAS(bad, 0, (int)(c + 1));
    }
    s[threadIdx.x] = v;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w >>= 1) {
        if (threadIdx.x < w) s[threadIdx.x] += s[threadIdx.x + w];
        __syncthreads();
    }
    if (threadIdx.x == 0) sums[e] = (float)s[0];
}

/** dGates[c] += perExpert[topIdx[c]] for indices in [0, E); one >= E sets *bad to its slot + 1 and adds nothing. */
extern "C" __global__ void rh_add_expert_values(float* dGates, const int* topIdx, const float* perExpert,
                                                long long count, int experts, int* bad) {
    RH_GRID_STRIDE(c, count) {
        int x = topIdx[c];
        if (x >= experts) {
            atomicCAS(bad, 0, (int)(c + 1));
        } else if (x >= 0) {
            dGates[c] += perExpert[x];
        }
    }
}
