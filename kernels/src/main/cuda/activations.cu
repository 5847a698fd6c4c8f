// Expert activations: GELU (tanh form) and SwiGLU (silu(g)*u over a [g | u] row), forward and backward.
#include "common.cuh"

#define GELU_C 0.7978845608028654f
#define GELU_A 0.044715f

__device__ __forceinline__ float rh_gelu_tanh(float v) {
    return tanhf(GELU_C * (v + GELU_A * v * v * v));
}

extern "C" __global__ void rh_gelu_forward(float* h, const float* a, long long n) {
    RH_GRID_STRIDE(i, n) {
        float v = a[i];
        h[i] = 0.5f * v * (1.0f + rh_gelu_tanh(v));
    }
}

extern "C" __global__ void rh_gelu_backward(float* da, const float* dh, const float* a, long long n) {
    RH_GRID_STRIDE(i, n) {
        float v = a[i];
        float t = rh_gelu_tanh(v);
        da[i] = dh[i] * (0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * GELU_C * (1.0f + 3.0f * GELU_A * v * v));
    }
}

__device__ __forceinline__ float rh_sigmoid(float x) {
    return 1.0f / (1.0f + expf(-x));
}

/** h[r, j] = silu(a[r, j]) * a[r, f + j]. */
extern "C" __global__ void rh_swiglu_forward(float* h, const float* a, int rows, int f) {
    RH_GRID_STRIDE(i, (long long)rows * f) {
        long long r = i / f;
        int j = (int)(i % f);
        float g = a[r * 2 * f + j];
        float u = a[r * 2 * f + f + j];
        h[i] = g * rh_sigmoid(g) * u;
    }
}

/** dg = dh*u*s*(1 + g*(1 - s)), du = dh*g*s with s = sigmoid(g). */
extern "C" __global__ void rh_swiglu_backward(float* da, const float* dh, const float* a, int rows, int f) {
    RH_GRID_STRIDE(i, (long long)rows * f) {
        long long r = i / f;
        int j = (int)(i % f);
        float g = a[r * 2 * f + j];
        float u = a[r * 2 * f + f + j];
        float s = rh_sigmoid(g);
        da[r * 2 * f + j] = dh[i] * u * s * (1.0f + g * (1.0f - s));
        da[r * 2 * f + f + j] = dh[i] * g * s;
    }
}
