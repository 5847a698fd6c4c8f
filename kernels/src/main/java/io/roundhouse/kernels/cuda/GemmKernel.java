package io.roundhouse.kernels.cuda;

import io.roundhouse.kernels.Precision;
import io.roundhouse.kernels.cuda.CudaBackend;

/**
 * The CUDA backend's plain GEMM kernels ({@link CudaBackend#matmul}): what the layers run at each
 * precision, and the benchmark's experiment.
 */
public enum GemmKernel {
    /** fp32, 64×64 tiles. */
    FP32("rh_sgemm", 64),
    /** bf16 tensor cores, 128×128 tiles: the layers' in bf16. */
    BF16("rh_gemm_bf16", 128),
    /**
     * {@link #BF16} with the next K step prefetched into registers and two shared buffers: an
     * experiment the benchmark times against BF16 until a GPU run says which the layers should use.
     */
    BF16_PREFETCH("rh_gemm_bf16_prefetch", 128);

    final String kernel;
    final int tile;

    GemmKernel(String kernel, int tile) {
        this.kernel = kernel;
        this.tile = tile;
    }

    /** The kernel the layers use at precision {@code p}. */
    static GemmKernel of(Precision p) {
        return p == Precision.BF16 ? BF16 : FP32;
    }
}
