// Shared by every Roundhouse kernel: Philox4x32-10 with exactly the layout of
// io.roundhouse.kernels.Philox (key = seed, counter = (i/4, stream), element i takes word i mod 4,
// uniform = top 24 bits * 2^-24), so masks drawn here equal the CPU backend's bit for bit.
#pragma once
#include <stdint.h>

#define RH_GRID_STRIDE(i, n) \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
         i += (long long)blockDim.x * gridDim.x)

__device__ __forceinline__ uint4 rh_philox10(uint4 c, uint32_t k0, uint32_t k1) {
    const uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
    #pragma unroll
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k0 += W0;
            k1 += W1;
        }
        uint32_t lo0 = M0 * c.x, hi0 = __umulhi(M0, c.x);
        uint32_t lo1 = M1 * c.z, hi1 = __umulhi(M1, c.z);
        c = make_uint4(hi1 ^ c.y ^ k0, lo1, hi0 ^ c.w ^ k1, lo0);
    }
    return c;
}

/** Uniform in [0, 1) for element {@code index} of {@code stream} under {@code seed}. */
__device__ __forceinline__ float rh_uniform(unsigned long long seed, unsigned long long stream,
                                            unsigned long long index) {
    unsigned long long b = index >> 2;
    uint4 w = rh_philox10(make_uint4((uint32_t)b, (uint32_t)(b >> 32), (uint32_t)stream, (uint32_t)(stream >> 32)),
                          (uint32_t)seed, (uint32_t)(seed >> 32));
    uint32_t word = (index & 3) == 0 ? w.x : (index & 3) == 1 ? w.y : (index & 3) == 2 ? w.z : w.w;
    return (float)(word >> 8) * 5.9604644775390625e-08f;  // 2^-24
}

/**
 * A standard normal for element {@code index} of {@code stream}: Box-Muller on the uniforms of
 * elements 2*index and 2*index + 1, sqrt(-2 ln(1 - u0)) * cos(2 pi u1) in double, rounded once:
 * Philox.normal's numbers.
 */
__device__ __forceinline__ float rh_normal(unsigned long long seed, unsigned long long stream,
                                           unsigned long long index) {
    unsigned long long b = index >> 1;
    uint4 w = rh_philox10(make_uint4((uint32_t)b, (uint32_t)(b >> 32), (uint32_t)stream, (uint32_t)(stream >> 32)),
                          (uint32_t)seed, (uint32_t)(seed >> 32));
    uint32_t w0 = (index & 1) ? w.z : w.x;
    uint32_t w1 = (index & 1) ? w.w : w.y;
    double u0 = (double)(w0 >> 8) * 5.9604644775390625e-08;  // 2^-24
    double u1 = (double)(w1 >> 8) * 5.9604644775390625e-08;
    double r = sqrt(-2.0 * log(1.0 - u0));
    return (float)(r * cos(6.283185307179586 * u1));
}
