// The expert-grouped GEMMs around a tile function (dense.cu's fp32 tile, gemm_bf16.cu's tensor-core
// tile): one launch covers every expert, blockIdx.z = expert g, whose rows are [offsets[g],
// offsets[g+1]) (a group may be empty).
#pragma once

typedef void (*rh_tile_fn)(int transA, int transB, int M, int N, int K, float alpha, const float* A, int lda,
                           const float* B, int ldb, float beta, float* C, int ldc, int m0, int n0);

/**
 * C_g = alpha*A_g*op(B_g) + beta*C_g, A_g and C_g the group's rows of A [rows, K] and C [rows, N],
 * B_g = B + g*strideB ([K, N], or [N, K] transposed). Blocks past a group's rows return at once.
 */
template <rh_tile_fn TILE, int TM, int TN>
__device__ __forceinline__ void rh_grouped_rows(int transB, int N, int K, float alpha, const float* A, int lda,
                                                const float* B, int ldb, long long strideB, float beta, float* C,
                                                int ldc, const int* offsets) {
    int g = blockIdx.z;
    int r0 = offsets[g];
    int rows = offsets[g + 1] - r0;
    if ((int)blockIdx.y * TM >= rows) return;
    TILE(0, transB, rows, N, K, alpha, A + (long long)r0 * lda, lda, B + g * strideB, ldb, beta,
         C + (long long)r0 * ldc, ldc, blockIdx.y * TM, blockIdx.x * TN);
}

/**
 * The weight gradients: C_g += A_g^T * B_g, A_g the group's rows of A [rows, M], B_g of B [rows, N];
 * C_g = C + g*strideC is [M, N].
 */
template <rh_tile_fn TILE, int TM, int TN>
__device__ __forceinline__ void rh_grouped_weights(int M, int N, const float* A, int lda, const float* B, int ldb,
                                                   float* C, long long strideC, const int* offsets) {
    int g = blockIdx.z;
    int r0 = offsets[g];
    int rows = offsets[g + 1] - r0;
    if (rows == 0) return;
    TILE(1, 0, M, N, rows, 1.0f, A + (long long)r0 * lda, lda, B + (long long)r0 * ldb, ldb, 1.0f, C + g * strideC, N,
         blockIdx.y * TM, blockIdx.x * TN);
}
