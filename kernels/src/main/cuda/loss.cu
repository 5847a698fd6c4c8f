// Softmax cross-entropy and AdamW.
#include "common.cuh"

/**
 * One thread per row: probs = softmax(logits), losses = logsumexp - logits[label]. A label outside
 * [0, classes) sets *bad to row + 1 (the host names it) and leaves the row's loss NaN.
 */
extern "C" __global__ void rh_cross_entropy_forward(float* losses, float* probs, const float* logits, const int* labels,
                                                    int rows, int classes, int* bad) {
    int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= rows) return;
    const float* l = logits + (long long)r * classes;
    float* p = probs + (long long)r * classes;
    float mx = l[0];
    for (int j = 1; j < classes; j++) mx = fmaxf(mx, l[j]);
    float sum = 0.0f;
    for (int j = 0; j < classes; j++) {
        float e = expf(l[j] - mx);
        p[j] = e;
        sum += e;
    }
    for (int j = 0; j < classes; j++) p[j] /= sum;
    int y = labels[r];
    if (y < 0 || y >= classes) {
        atomicCAS(bad, 0, r + 1);
        losses[r] = __int_as_float(0x7fc00000);
        return;
    }
    losses[r] = mx + logf(sum) - l[y];
}

extern "C" __global__ void rh_cross_entropy_backward(float* dLogits, const float* probs, const int* labels, int rows,
                                                     int classes, float scale) {
    RH_GRID_STRIDE(i, (long long)rows * classes) {
        long long r = i / classes;
        int j = (int)(i % classes);
        dLogits[i] = scale * probs[i] - (j == labels[r] ? scale : 0.0f);
    }
}

/** AdamW with bias corrections c1 = 1/(1 - beta1^t), c2 = 1/(1 - beta2^t) and decoupled decay. */
extern "C" __global__ void rh_adamw(float* w, const float* g, float* m, float* v, float lr, float beta1, float beta2,
                                    float eps, float decay, float c1, float c2, long long n) {
    RH_GRID_STRIDE(i, n) {
        float gi = g[i];
        float mi = beta1 * m[i] + (1.0f - beta1) * gi;
        float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] -= lr * (mi * c1 / (sqrtf(vi * c2) + eps) + decay * w[i]);
    }
}
