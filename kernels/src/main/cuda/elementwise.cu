// Element-wise ops: memory helpers, dropout (one rate or a rate per row), router jitter, the
// products and row scalings of the Self-Tuning Network layers, and a sum of squares.
#include "common.cuh"

extern "C" __global__ void rh_fill(float* y, float v, long long n) {
    RH_GRID_STRIDE(i, n) { y[i] = v; }
}

extern "C" __global__ void rh_axpy(float* y, float a, const float* x, long long n) {
    RH_GRID_STRIDE(i, n) { y[i] += a * x[i]; }
}

extern "C" __global__ void rh_scale(float* y, float a, long long n) {
    RH_GRID_STRIDE(i, n) { y[i] *= a; }
}

/** y = a*b (add = 0) or y += a*b (add = 1); b has a's n elements, or (rowB) is a row of cols. */
extern "C" __global__ void rh_multiply(float* y, const float* a, const float* b, long long n, int cols, int rowB,
                                       int add) {
    RH_GRID_STRIDE(i, n) {
        float v = a[i] * (rowB ? b[i % cols] : b[i]);
        y[i] = add ? y[i] + v : v;
    }
}

/** acc[c] += sum_r a[r,c]*b[r,c]: one thread per column, rows in order (deterministic). */
extern "C" __global__ void rh_sum_row_products(float* acc, const float* a, const float* b, int rows, int cols) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    float s = acc[c];
    for (int r = 0; r < rows; r++) {
        s += a[(long long)r * cols + c] * b[(long long)r * cols + c];
    }
    acc[c] = s;
}

extern "C" __global__ void rh_scale_rows(float* t, const float* s, int rows, int cols) {
    RH_GRID_STRIDE(i, (long long)rows * cols) { t[i] *= s[i / cols]; }
}

/** Inverted dropout, element i kept when uniform(seed, stream, first + i) >= p. */
extern "C" __global__ void rh_dropout(float* y, const float* x, float p, unsigned long long seed,
                                      unsigned long long stream, unsigned long long first, long long n) {
    float scale = 1.0f / (1.0f - p);
    RH_GRID_STRIDE(i, n) {
        y[i] = rh_uniform(seed, stream, first + i) >= p ? x[i] * scale : 0.0f;
    }
}

/** Dropout with a rate per row. */
extern "C" __global__ void rh_dropout_rows(float* y, const float* x, const float* rates, unsigned long long seed,
                                           unsigned long long stream, unsigned long long first, int rows, int cols) {
    RH_GRID_STRIDE(i, (long long)rows * cols) {
        float p = rates[i / cols];
        float scale = 1.0f / (1.0f - p);
        y[i] = rh_uniform(seed, stream, first + i) >= p ? x[i] * scale : 0.0f;
    }
}

/** y = x * (1 + a[row]*(2u - 1)). */
extern "C" __global__ void rh_jitter(float* y, const float* x, const float* amp, unsigned long long seed,
                                     unsigned long long stream, unsigned long long first, int rows, int cols) {
    RH_GRID_STRIDE(i, (long long)rows * cols) {
        float u = rh_uniform(seed, stream, first + i);
        y[i] = x[i] * (1.0f + amp[i / cols] * (2.0f * u - 1.0f));
    }
}

/** partial[block] = sum of x^2 over the block's grid-stride elements, in double. */
extern "C" __global__ void rh_sum_squares(double* partial, const float* x, long long n) {
    __shared__ double s[256];
    double v = 0;
    RH_GRID_STRIDE(i, n) { v += (double)x[i] * x[i]; }
    s[threadIdx.x] = v;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w >>= 1) {
        if (threadIdx.x < w) s[threadIdx.x] += s[threadIdx.x + w];
        __syncthreads();
    }
    if (threadIdx.x == 0) partial[blockIdx.x] = s[0];
}
