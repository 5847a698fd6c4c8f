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

__device__ __forceinline__ void rh_gemm_bf16_tile(int transA, int transB, int M, int N, int K, float alpha,
                                                  const float* A, int lda, const float* B, int ldb, float beta,
                                                  float* C, int ldc, int m0, int n0) {
    __shared__ __align__(32) __nv_bfloat16 As[TM][TK + APAD];
    __shared__ __align__(32) __nv_bfloat16 Bs[TK][TN + BPAD];
    __shared__ __align__(32) float stage[8][16 * 16];
    int warp = threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    int wm = warp / 2;  // 0..3: rows wm*32
    int wn = warp % 2;  // 0..1: columns wn*64
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][4];
    #pragma unroll
    for (int i = 0; i < 2; i++) {
        #pragma unroll
        for (int j = 0; j < 4; j++) wmma::fill_fragment(acc[i][j], 0.0f);
    }
    for (int k0 = 0; k0 < K; k0 += TK) {
        for (int l = threadIdx.x; l < TM * TK; l += 256) {
            int kk = transA ? l / TM : l % TK;
            int mm = transA ? l % TM : l / TK;
            int gm = m0 + mm;
            int gk = k0 + kk;
            float v = (gm < M && gk < K) ? (transA ? A[(long long)gk * lda + gm] : A[(long long)gm * lda + gk]) : 0.0f;
            As[mm][kk] = __float2bfloat16(v);
        }
        for (int l = threadIdx.x; l < TK * TN; l += 256) {
            int kk = transB ? l % TK : l / TN;
            int nn = transB ? l / TK : l % TN;
            int gn = n0 + nn;
            int gk = k0 + kk;
            float v = (gn < N && gk < K) ? (transB ? B[(long long)gn * ldb + gk] : B[(long long)gk * ldb + gn]) : 0.0f;
            Bs[kk][nn] = __float2bfloat16(v);
        }
        __syncthreads();
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
        __syncthreads();
    }
    #pragma unroll
    for (int i = 0; i < 2; i++) {
        #pragma unroll
        for (int j = 0; j < 4; j++) {
            wmma::store_matrix_sync(stage[warp], acc[i][j], 16, wmma::mem_row_major);
            __syncwarp();
            for (int e = lane; e < 256; e += 32) {
                int gm = m0 + wm * 32 + i * 16 + e / 16;
                int gn = n0 + wn * 64 + j * 16 + e % 16;
                if (gm < M && gn < N) {
                    long long at = (long long)gm * ldc + gn;
                    float v = alpha * stage[warp][e];
                    C[at] = beta == 0.0f ? v : v + beta * C[at];
                }
            }
            __syncwarp();
        }
    }
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
