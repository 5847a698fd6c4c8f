package io.roundhouse.kernels.cpu;

import static io.roundhouse.kernels.cpu.CpuBackend.f;
import static io.roundhouse.kernels.cpu.CpuBackend.o;

import io.roundhouse.kernels.Check;
import io.roundhouse.kernels.Tensor;

/**
 * The CPU backend's image ops ({@link io.roundhouse.kernels.Backend}'s "images" section): patches
 * and their inverse, per-image transposes (token mixing across positions) and per-image means.
 * Each splits by image over {@link CpuThreads}; every output element is computed as one thread
 * computes it, so results are the same bits at any thread count.
 */
final class CpuImage {
    private CpuImage() {
    }

    static void patchesForward(Tensor xp, Tensor x, int channels, int side, int patch) {
        int p = Check.patches("patchesForward", xp, x, channels, side, patch);
        float[] src = f(x);
        float[] dst = f(xp);
        int xo = o(x);
        int po = o(xp);
        CpuThreads.rows(x.dim(0), x.rowSize(),
                (c, first, end) -> patches(src, xo, dst, po, first, end, channels, side, patch, p, true));
    }

    static void patchesBackward(Tensor dx, Tensor dxp, int channels, int side, int patch) {
        int p = Check.patches("patchesBackward", dxp, dx, channels, side, patch);
        float[] img = f(dx);
        float[] pat = f(dxp);
        int xo = o(dx);
        int po = o(dxp);
        CpuThreads.rows(dx.dim(0), dx.rowSize(),
                (c, first, end) -> patches(img, xo, pat, po, first, end, channels, side, patch, p, false));
    }

    /** Copies images [first, end) into their patches ({@code forward}) or patches back into images. */
    private static void patches(float[] img, int io, float[] pat, int po, int first, int end, int channels, int side,
                                int patch, int p, boolean forward) {
        int perSide = side / patch;
        int imageSize = channels * side * side;
        int patchSize = channels * patch * patch;
        for (int g = first; g < end; g++) {
            for (int py = 0; py < perSide; py++) {
                for (int px = 0; px < perSide; px++) {
                    int row = po + (g * p + py * perSide + px) * patchSize;
                    for (int ch = 0; ch < channels; ch++) {
                        for (int dy = 0; dy < patch; dy++) {
                            int at = io + g * imageSize + ch * side * side + (py * patch + dy) * side + px * patch;
                            int col = row + (ch * patch + dy) * patch;
                            if (forward) {
                                System.arraycopy(img, at, pat, col, patch);
                            } else {
                                System.arraycopy(pat, col, img, at, patch);
                            }
                        }
                    }
                }
            }
        }
    }

    static void transposeGroups(Tensor y, Tensor x, int groups) {
        Check.transposeGroups("transposeGroups", y, x, groups);
        float[] src = f(x);
        float[] dst = f(y);
        int xo = o(x);
        int yo = o(y);
        int a = x.dim(0) / groups;
        int b = x.dim(1);
        CpuThreads.rows(groups, (long) a * b, (c, first, end) -> {
            for (int g = first; g < end; g++) {
                int in = xo + g * a * b;
                int out = yo + g * a * b;
                for (int i = 0; i < a; i++) {
                    for (int j = 0; j < b; j++) {
                        dst[out + j * a + i] = src[in + i * b + j];
                    }
                }
            }
        });
    }

    static void meanGroupsForward(Tensor y, Tensor x, int groups) {
        int p = Check.meanGroups("meanGroupsForward", y, x, groups);
        float[] src = f(x);
        float[] dst = f(y);
        int xo = o(x);
        int yo = o(y);
        int d = x.dim(1);
        float inv = 1f / p;
        CpuThreads.rows(groups, (long) p * d, (c, first, end) -> {
            for (int g = first; g < end; g++) {
                int out = yo + g * d;
                for (int j = 0; j < d; j++) {
                    float sum = 0f;
                    for (int r = 0, in = xo + g * p * d + j; r < p; r++, in += d) {
                        sum += src[in];
                    }
                    dst[out + j] = sum * inv;
                }
            }
        });
    }

    static void meanGroupsBackward(Tensor dx, Tensor dy, int groups) {
        int p = Check.meanGroups("meanGroupsBackward", dy, dx, groups);
        float[] src = f(dy);
        float[] dst = f(dx);
        int yo = o(dy);
        int xo = o(dx);
        int d = dx.dim(1);
        float inv = 1f / p;
        CpuThreads.rows(groups, (long) p * d, (c, first, end) -> {
            for (int g = first; g < end; g++) {
                for (int r = 0; r < p; r++) {
                    int out = xo + (g * p + r) * d;
                    for (int j = 0; j < d; j++) {
                        dst[out + j] = src[yo + g * d + j] * inv;
                    }
                }
            }
        });
    }
}
