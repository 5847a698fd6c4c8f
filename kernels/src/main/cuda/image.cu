// The image ops of io.roundhouse.kernels.Backend ("images"): patches and their inverse, per-image
// transposes (a Mixer's token mixing) and per-image means. One thread per output element, each
// computed as the CPU backend computes it, so results are the same bits.
#include "common.cuh"

/** The element of x[G, c·S·S] that element i of xp[G·P, c·p·p] holds (Backend.patchesForward). */
__device__ __forceinline__ long long rh_patch_source(long long i, int channels, int side, int patch) {
    int perSide = side / patch;
    int patches = perSide * perSide;
    long long patchSize = (long long)channels * patch * patch;
    long long row = i / patchSize;
    int col = (int)(i - row * patchSize);
    long long g = row / patches;
    int pos = (int)(row - g * patches);
    int py = pos / perSide, px = pos - py * perSide;
    int ch = col / (patch * patch);
    int rem = col - ch * patch * patch;
    int dy = rem / patch, dx = rem - dy * patch;
    return g * channels * side * side + (long long)ch * side * side + (long long)(py * patch + dy) * side
           + px * patch + dx;
}

/** xp[G·P, c·p·p] from x[G, c·S·S]; n = the elements of either. */
extern "C" __global__ void rh_patches_forward(float* xp, const float* x, int channels, int side, int patch,
                                              long long n) {
    RH_GRID_STRIDE(i, n) { xp[i] = x[rh_patch_source(i, channels, side, patch)]; }
}

/** dx[G, c·S·S] from dxp[G·P, c·p·p]: the inverse permutation, every element written once. */
extern "C" __global__ void rh_patches_backward(float* dx, const float* dxp, int channels, int side, int patch,
                                               long long n) {
    RH_GRID_STRIDE(i, n) { dx[rh_patch_source(i, channels, side, patch)] = dxp[i]; }
}

/** y[G·B, A] from x[G·A, B]: y[g·B + b, a] = x[g·A + a, b]; n = G·A·B. */
extern "C" __global__ void rh_transpose_groups(float* y, const float* x, int a, int b, long long n) {
    long long block = (long long)a * b;
    RH_GRID_STRIDE(i, n) {
        long long g = i / block;
        int rem = (int)(i - g * block);
        int j = rem / a, k = rem - j * a;
        y[i] = x[g * block + (long long)k * b + j];
    }
}

/** y[G, D] = the mean of x[G·P, D]'s rows of each group, summed in row order; n = G·D. */
extern "C" __global__ void rh_mean_groups_forward(float* y, const float* x, int p, int d, long long n) {
    float inv = 1.0f / (float)p;
    RH_GRID_STRIDE(i, n) {
        long long g = i / d;
        int j = (int)(i - g * d);
        const float* in = x + g * p * d + j;
        float sum = 0.0f;
        for (int r = 0; r < p; r++) {
            sum = __fadd_rn(sum, in[(long long)r * d]);
        }
        y[i] = sum * inv;
    }
}

/** dx[G·P, D] = dy[g]/P for each row of group g; n = G·P·D. */
extern "C" __global__ void rh_mean_groups_backward(float* dx, const float* dy, int p, int d, long long n) {
    float inv = 1.0f / (float)p;
    RH_GRID_STRIDE(i, n) {
        long long row = i / d;
        int j = (int)(i - row * d);
        dx[i] = dy[(row / p) * d + j] * inv;
    }
}
