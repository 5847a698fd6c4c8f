// LayerNorm (beta given) and RMSNorm (no beta): one block per row for the row statistics and the
// input gradient; the gain and bias gradients one thread per column over the rows in order.
#include "common.cuh"

__device__ double rh_block_sum(double v, double* s) {
    s[threadIdx.x] = v;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w >>= 1) {
        if (threadIdx.x < w) s[threadIdx.x] += s[threadIdx.x + w];
        __syncthreads();
    }
    double total = s[0];
    __syncthreads();
    return total;
}

/** blockDim.x must be a power of two (256). */
extern "C" __global__ void rh_norm_forward(float* y, float* mean, float* rstd, const float* x, const float* gamma,
                                           const float* beta, float eps, int d, int hasBeta) {
    __shared__ double s[256];
    long long r = blockIdx.x;
    const float* xr = x + r * d;
    double mu = 0;
    if (hasBeta) {
        double acc = 0;
        for (int j = threadIdx.x; j < d; j += blockDim.x) acc += xr[j];
        mu = rh_block_sum(acc, s) / d;
    }
    double var = 0;
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        double c = xr[j] - mu;
        var += c * c;
    }
    var = rh_block_sum(var, s);
    float rs = (float)(1.0 / sqrt(var / d + eps));
    float m = (float)mu;
    if (threadIdx.x == 0) {
        mean[r] = m;
        rstd[r] = rs;
    }
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        float v = (xr[j] - m) * rs * gamma[j];
        y[r * d + j] = hasBeta ? v + beta[j] : v;
    }
}

extern "C" __global__ void rh_norm_backward_dx(float* dx, const float* dy, const float* x, const float* mean,
                                               const float* rstd, const float* gamma, int d, int hasBeta) {
    __shared__ double s[256];
    long long r = blockIdx.x;
    float m = mean[r];
    float rs = rstd[r];
    double sumD = 0, sumDX = 0;
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        float xhat = (x[r * d + j] - m) * rs;
        float dxhat = dy[r * d + j] * gamma[j];
        sumD += dxhat;
        sumDX += dxhat * xhat;
    }
    sumD = rh_block_sum(sumD, s);
    sumDX = rh_block_sum(sumDX, s);
    float meanD = hasBeta ? (float)(sumD / d) : 0.0f;
    float meanDX = (float)(sumDX / d);
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        float xhat = (x[r * d + j] - m) * rs;
        float dxhat = dy[r * d + j] * gamma[j];
        dx[r * d + j] = rs * (dxhat - meanD - xhat * meanDX);
    }
}

/** dgamma[j] += sum_r dy*xhat, dbeta[j] += sum_r dy (when given). */
extern "C" __global__ void rh_norm_backward_params(float* dgamma, float* dbeta, const float* dy, const float* x,
                                                   const float* mean, const float* rstd, int rows, int d) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= d) return;
    float g = 0.0f, b = 0.0f;
    for (int r = 0; r < rows; r++) {
        float xhat = (x[(long long)r * d + j] - mean[r]) * rstd[r];
        g += dy[(long long)r * d + j] * xhat;
        b += dy[(long long)r * d + j];
    }
    dgamma[j] += g;
    if (dbeta != 0) dbeta[j] += b;
}
