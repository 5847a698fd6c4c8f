// Dense math: an fp32 GEMM with either operand transposed (row-major, C = alpha*op(A)*op(B) +
// beta*C), the bias broadcast a linear layer starts from, and column sums for the bias gradient.
#include "common.cuh"
#include "grouped.cuh"

#define BM 64
#define BN 64
#define BK 16

/**
 * One 64x64 tile of C = alpha*op(A)*op(B) + beta*C at (m0, n0), by 256 threads, 4x4 elements each
 * (rows ty + 16i, columns tx + 16j, so a warp's stores are contiguous); A and B tiles of depth 16
 * are staged in shared memory. beta = 0 never reads C.
 */
__device__ __forceinline__ void rh_sgemm_tile(int transA, int transB, int M, int N, int K, float alpha,
                                              const float* A, int lda, const float* B, int ldb, float beta, float* C,
                                              int ldc, int m0, int n0) {
    __shared__ float As[BK][BM + 1];
    __shared__ float Bs[BK][BN];
    int tx = threadIdx.x % 16;
    int ty = threadIdx.x / 16;
    float acc[4][4];
    #pragma unroll
    for (int i = 0; i < 4; i++) {
        #pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;
    }
    for (int k0 = 0; k0 < K; k0 += BK) {
        for (int l = threadIdx.x; l < BK * BM; l += 256) {
            int kk = transA ? l / BM : l % BK;
            int mm = transA ? l % BM : l / BK;
            int gm = m0 + mm;
            int gk = k0 + kk;
            As[kk][mm] = (gm < M && gk < K) ? (transA ? A[(long long)gk * lda + gm] : A[(long long)gm * lda + gk]) : 0.0f;
        }
        for (int l = threadIdx.x; l < BK * BN; l += 256) {
            int kk = transB ? l % BK : l / BN;
            int nn = transB ? l / BK : l % BN;
            int gn = n0 + nn;
            int gk = k0 + kk;
            Bs[kk][nn] = (gn < N && gk < K) ? (transB ? B[(long long)gn * ldb + gk] : B[(long long)gk * ldb + gn]) : 0.0f;
        }
        __syncthreads();
        #pragma unroll
        for (int kk = 0; kk < BK; kk++) {
            float a[4], b[4];
            #pragma unroll
            for (int i = 0; i < 4; i++) a[i] = As[kk][ty + 16 * i];
            #pragma unroll
            for (int j = 0; j < 4; j++) b[j] = Bs[kk][tx + 16 * j];
            #pragma unroll
            for (int i = 0; i < 4; i++) {
                #pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] += a[i] * b[j];
            }
        }
        __syncthreads();
    }
    #pragma unroll
    for (int i = 0; i < 4; i++) {
        int gm = m0 + ty + 16 * i;
        if (gm >= M) continue;
        #pragma unroll
        for (int j = 0; j < 4; j++) {
            int gn = n0 + tx + 16 * j;
            if (gn >= N) continue;
            long long at = (long long)gm * ldc + gn;
            C[at] = beta == 0.0f ? alpha * acc[i][j] : alpha * acc[i][j] + beta * C[at];
        }
    }
}

extern "C" __global__ void __launch_bounds__(256) rh_sgemm(int transA, int transB, int M, int N, int K, float alpha,
                                                           const float* A, int lda, const float* B, int ldb,
                                                           float beta, float* C, int ldc) {
    rh_sgemm_tile(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, blockIdx.y * BM, blockIdx.x * BN);
}

/** Grouped over experts in one launch: see grouped.cuh. */
extern "C" __global__ void __launch_bounds__(256) rh_sgemm_grouped_rows(int transB, int N, int K, float alpha,
                                                                        const float* A, int lda, const float* B,
                                                                        int ldb, long long strideB, float beta,
                                                                        float* C, int ldc, const int* offsets) {
    rh_grouped_rows<rh_sgemm_tile, BM, BN>(transB, N, K, alpha, A, lda, B, ldb, strideB, beta, C, ldc, offsets);
}

/** The weight gradient grouped over experts: see grouped.cuh. */
extern "C" __global__ void __launch_bounds__(256) rh_sgemm_grouped_weights(int M, int N, const float* A, int lda,
                                                                           const float* B, int ldb, float* C,
                                                                           long long strideC, const int* offsets) {
    rh_grouped_weights<rh_sgemm_tile, BM, BN>(M, N, A, lda, B, ldb, C, strideC, offsets);
}

/** y[r, :] = b[g(r), :] with g(r) the group of row r (offsets[E+1]). */
extern "C" __global__ void rh_bias_rows_grouped(float* y, const float* b, const int* offsets, int groups, int cols) {
    int rows = offsets[groups];
    RH_GRID_STRIDE(i, (long long)rows * cols) {
        int r = (int)(i / cols);
        int lo = 0, hi = groups - 1;
        while (lo < hi) {  // the last group whose first row is <= r
            int mid = (lo + hi + 1) / 2;
            if (offsets[mid] <= r) lo = mid; else hi = mid - 1;
        }
        y[i] = b[(long long)lo * cols + i % cols];
    }
}

/** acc[g, c] += sum over group g's rows of x[r, c] (blockIdx.y = g), rows in order. */
extern "C" __global__ void rh_column_sums_grouped(float* acc, const float* x, const int* offsets, int cols) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    int g = blockIdx.y;
    if (c >= cols) return;
    float s = 0.0f;
    for (int r = offsets[g]; r < offsets[g + 1]; r++) s += x[(long long)r * cols + c];
    acc[(long long)g * cols + c] += s;
}

/** y[r, c] = b[c]: the value a linear layer's GEMM accumulates onto. */
extern "C" __global__ void rh_bias_rows(float* y, const float* b, int rows, int cols) {
    RH_GRID_STRIDE(i, (long long)rows * cols) { y[i] = b[i % cols]; }
}

/** acc[c] += sum_r x[r, c], one thread per column, rows in order (deterministic). */
extern "C" __global__ void rh_column_sums(float* acc, const float* x, int rows, int cols) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    float s = 0.0f;
    for (int r = 0; r < rows; r++) s += x[(long long)r * cols + c];
    acc[c] += s;
}
