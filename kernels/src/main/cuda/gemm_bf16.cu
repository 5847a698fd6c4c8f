// GEMM on tensor cores: bf16 inputs (converted from fp32 with round-to-nearest-even as the tiles
// are staged), fp32 accumulation (WMMA 16x16x16, sm_80 and newer). Row-major C = alpha*op(A)*op(B)
// + beta*C, either operand transposed, any sizes (edges are zero-padded in shared memory). 256
// threads = 8 warps compute a 128x128 tile, each warp 32x64 (2x4 fragments); K in steps of 32.
// The same tile serves the plain GEMM and the expert-grouped ones (as dense.cu's fp32 tile does).
#include <mma.h>
#include <cuda_bf16.h>
#include "common.cuh"
#include "grouped.cuh"

using namespace nvcuda;

#define TM 128
#define TN 128
#define TK 32
#define APAD 8
#define BPAD 8

typedef __nv_bfloat16 ATile[TM][TK + APAD];
typedef __nv_bfloat16 BTile[TK][TN + BPAD];
typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> Acc;

/** Where element l (of the 256 threads' share) of op(A)'s TM x TK tile goes in the tile. */
__device__ __forceinline__ void rh_a_pos(int l, int transA, int& mm, int& kk) {
    kk = transA ? l / TM : l % TK;
    mm = transA ? l % TM : l / TK;
}

/** Where element l of op(B)'s TK x TN tile goes in the tile. */
__device__ __forceinline__ void rh_b_pos(int l, int transB, int& kk, int& nn) {
    kk = transB ? l % TK : l / TN;
    nn = transB ? l / TK : l % TN;
}

/** Element l of op(A)'s TM x TK tile at (m0, k0): its place and value (0 outside). */
__device__ __forceinline__ float rh_a_elem(int l, int transA, const float* A, int lda, int M, int K, int m0, int k0,
                                           int& mm, int& kk) {
    rh_a_pos(l, transA, mm, kk);
    int gm = m0 + mm;
    int gk = k0 + kk;
    return (gm < M && gk < K) ? (transA ? A[(long long)gk * lda + gm] : A[(long long)gm * lda + gk]) : 0.0f;
}

/** Element l of op(B)'s TK x TN tile at (k0, n0), as rh_a_elem. */
__device__ __forceinline__ float rh_b_elem(int l, int transB, const float* B, int ldb, int N, int K, int k0, int n0,
                                           int& kk, int& nn) {
    rh_b_pos(l, transB, kk, nn);
    int gn = n0 + nn;
    int gk = k0 + kk;
    return (gn < N && gk < K) ? (transB ? B[(long long)gn * ldb + gk] : B[(long long)gk * ldb + gn]) : 0.0f;
}

/** This warp's 32x64 share of the product of the staged tiles, added to acc. */
__device__ __forceinline__ void rh_mma_tiles(const ATile& As, const BTile& Bs, Acc (&acc)[2][4], int wm, int wn) {
    #pragma unroll
    for (int kk = 0; kk < TK; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> a[2];
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> b[4];
        #pragma unroll
        for (int i = 0; i < 2; i++) wmma::load_matrix_sync(a[i], &As[wm * 32 + i * 16][kk], TK + APAD);
        #pragma unroll
        for (int j = 0; j < 4; j++) wmma::load_matrix_sync(b[j], &Bs[kk][wn * 64 + j * 16], TN + BPAD);
        #pragma unroll
        for (int i = 0; i < 2; i++) {
            #pragma unroll
            for (int j = 0; j < 4; j++) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
        }
    }
}

/** C = alpha*acc + beta*C for this warp's share, staged through shared memory (edges masked). */
__device__ __forceinline__ void rh_store_acc(Acc (&acc)[2][4], float* stage, int wm, int wn, float alpha, float beta,
                                             float* C, int ldc, int M, int N, int m0, int n0) {
    int lane = threadIdx.x % 32;
    #pragma unroll
    for (int i = 0; i < 2; i++) {
        #pragma unroll
        for (int j = 0; j < 4; j++) {
            wmma::store_matrix_sync(stage, acc[i][j], 16, wmma::mem_row_major);
            __syncwarp();
            for (int e = lane; e < 256; e += 32) {
                int gm = m0 + wm * 32 + i * 16 + e / 16;
                int gn = n0 + wn * 64 + j * 16 + e % 16;
                if (gm < M && gn < N) {
                    long long at = (long long)gm * ldc + gn;
                    float v = alpha * stage[e];
                    C[at] = beta == 0.0f ? v : v + beta * C[at];
                }
            }
            __syncwarp();
        }
    }
}

__device__ __forceinline__ void rh_gemm_bf16_tile(int transA, int transB, int M, int N, int K, float alpha,
                                                  const float* A, int lda, const float* B, int ldb, float beta,
                                                  float* C, int ldc, int m0, int n0) {
    __shared__ __align__(32) ATile As;
    __shared__ __align__(32) BTile Bs;
    __shared__ __align__(32) float stage[8][16 * 16];
    int warp = threadIdx.x / 32;
    int wm = warp / 2;  // 0..3: rows wm*32
    int wn = warp % 2;  // 0..1: columns wn*64
    Acc acc[2][4];
    #pragma unroll
    for (int i = 0; i < 2; i++) {
        #pragma unroll
        for (int j = 0; j < 4; j++) wmma::fill_fragment(acc[i][j], 0.0f);
    }
    for (int k0 = 0; k0 < K; k0 += TK) {
        for (int l = threadIdx.x; l < TM * TK; l += 256) {
            int mm, kk;
            float v = rh_a_elem(l, transA, A, lda, M, K, m0, k0, mm, kk);
            As[mm][kk] = __float2bfloat16(v);
        }
        for (int l = threadIdx.x; l < TK * TN; l += 256) {
            int kk, nn;
            float v = rh_b_elem(l, transB, B, ldb, N, K, k0, n0, kk, nn);
            Bs[kk][nn] = __float2bfloat16(v);
        }
        __syncthreads();
        rh_mma_tiles(As, Bs, acc, wm, wn);
        __syncthreads();
    }
    rh_store_acc(acc, stage[warp], wm, wn, alpha, beta, C, ldc, M, N, m0, n0);
}

/**
 * The same product with the next K step's tiles loaded into registers while the tensor cores work
 * on the current ones, and two shared-memory buffers, so one barrier per K step instead of two.
 * An experiment the benchmark times against rh_gemm_bf16 (and the op tests check); the layers use
 * rh_gemm_bf16's tile until a GPU run says which is faster.
 */
__device__ __forceinline__ void rh_gemm_bf16_prefetch_tile(int transA, int transB, int M, int N, int K, float alpha,
                                                           const float* A, int lda, const float* B, int ldb,
                                                           float beta, float* C, int ldc, int m0, int n0) {
    __shared__ __align__(32) ATile As[2];
    __shared__ __align__(32) BTile Bs[2];
    __shared__ __align__(32) float stage[8][16 * 16];
    const int per = TM * TK / 256;  // elements of each tile per thread (TM*TK = TK*TN)
    int warp = threadIdx.x / 32;
    int wm = warp / 2;
    int wn = warp % 2;
    Acc acc[2][4];
    #pragma unroll
    for (int i = 0; i < 2; i++) {
        #pragma unroll
        for (int j = 0; j < 4; j++) wmma::fill_fragment(acc[i][j], 0.0f);
    }
    float ra[per];
    float rb[per];
    int mm, kk, nn;
    #pragma unroll
    for (int i = 0; i < per; i++) {
        ra[i] = rh_a_elem(threadIdx.x + i * 256, transA, A, lda, M, K, m0, 0, mm, kk);
        As[0][mm][kk] = __float2bfloat16(ra[i]);
        rb[i] = rh_b_elem(threadIdx.x + i * 256, transB, B, ldb, N, K, 0, n0, kk, nn);
        Bs[0][kk][nn] = __float2bfloat16(rb[i]);
    }
    __syncthreads();
    int cur = 0;
    for (int k0 = 0; k0 < K; k0 += TK) {
        bool more = k0 + TK < K;
        if (more) {
            #pragma unroll
            for (int i = 0; i < per; i++) {
                ra[i] = rh_a_elem(threadIdx.x + i * 256, transA, A, lda, M, K, m0, k0 + TK, mm, kk);
                rb[i] = rh_b_elem(threadIdx.x + i * 256, transB, B, ldb, N, K, k0 + TK, n0, kk, nn);
            }
        }
        rh_mma_tiles(As[cur], Bs[cur], acc, wm, wn);
        if (more) {
            // The other buffer was last read before the previous barrier: free to overwrite.
            #pragma unroll
            for (int i = 0; i < per; i++) {
                rh_a_pos(threadIdx.x + i * 256, transA, mm, kk);
                As[cur ^ 1][mm][kk] = __float2bfloat16(ra[i]);
                rh_b_pos(threadIdx.x + i * 256, transB, kk, nn);
                Bs[cur ^ 1][kk][nn] = __float2bfloat16(rb[i]);
            }
        }
        __syncthreads();
        cur ^= 1;
    }
    rh_store_acc(acc, stage[warp], wm, wn, alpha, beta, C, ldc, M, N, m0, n0);
}

extern "C" __global__ void __launch_bounds__(256) rh_gemm_bf16(int transA, int transB, int M, int N, int K,
                                                               float alpha, const float* A, int lda, const float* B,
                                                               int ldb, float beta, float* C, int ldc) {
    rh_gemm_bf16_tile(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, blockIdx.y * TM, blockIdx.x * TN);
}

/** Grouped over experts in one launch: see grouped.cuh. */
extern "C" __global__ void __launch_bounds__(256) rh_gemm_bf16_grouped_rows(int transB, int N, int K, float alpha,
                                                                            const float* A, int lda, const float* B,
                                                                            int ldb, long long strideB, float beta,
                                                                            float* C, int ldc, const int* offsets) {
    rh_grouped_rows<rh_gemm_bf16_tile, TM, TN>(transB, N, K, alpha, A, lda, B, ldb, strideB, beta, C, ldc, offsets);
}

/** The weight gradient grouped over experts: see grouped.cuh. */
extern "C" __global__ void __launch_bounds__(256) rh_gemm_bf16_grouped_weights(int M, int N, const float* A, int lda,
                                                                               const float* B, int ldb, float* C,
                                                                               long long strideC, const int* offsets) {
    rh_grouped_weights<rh_gemm_bf16_tile, TM, TN>(M, N, A, lda, B, ldb, C, strideC, offsets);
}

/** rh_gemm_bf16 with the prefetching, double-buffered tile (the benchmark's experiment). */
extern "C" __global__ void __launch_bounds__(256) rh_gemm_bf16_prefetch(int transA, int transB, int M, int N, int K,
                                                                        float alpha, const float* A, int lda,
                                                                        const float* B, int ldb, float beta, float* C,
                                                                        int ldc) {
    rh_gemm_bf16_prefetch_tile(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, blockIdx.y * TM,
                               blockIdx.x * TN);
}
