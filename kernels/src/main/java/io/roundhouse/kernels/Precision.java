package io.roundhouse.kernels;

/**
 * The precision of a layer op's GEMMs. Everything else (outputs, biases, gradients, optimizer
 * state, the element-wise ops) stays fp32 either way.
 */
public enum Precision {
    /** fp32 operands, fp32 accumulation. */
    FP32,
    /**
     * Operands rounded to bfloat16 (round to nearest even, as CUDA's {@code __float2bfloat16}),
     * products accumulated in fp32: the tensor cores' mixed precision. The product of two bf16
     * values is exact in fp32, so a backend's result differs from another's only by summation
     * order. On the CPU it is emulated (rounded copies of the operands, then the fp32 GEMM): the
     * GPU's numerics, not its speed.
     */
    BF16;

    /** The config spelling: "fp32", "bf16". */
    public String key() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }

    /** {@code v} rounded to the nearest bfloat16 (ties to even), as a float; NaN stays NaN. */
    public static float bf16(float v) {
        int bits = Float.floatToRawIntBits(v);
        if ((bits & 0x7f80_0000) == 0x7f80_0000 && (bits & 0x007f_ffff) != 0) {
            return Float.intBitsToFloat((bits | 0x0040_0000) & 0xffff_0000);  // a quiet NaN, payload kept
        }
        bits += 0x7fff + ((bits >>> 16) & 1);
        return Float.intBitsToFloat(bits & 0xffff_0000);
    }

    /** {@code dst[0, n) = bf16(src[off, off+n))}. */
    public static void bf16(float[] src, int off, float[] dst, int n) {
        for (int j = 0; j < n; j++) {
            dst[j] = bf16(src[off + j]);
        }
    }
}
