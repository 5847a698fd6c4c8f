package io.roundhouse.kernels;

/** Expert hidden activations. */
public enum Activation {
    /**
     * {@code h = gelu(a)} with the tanh approximation {@code 0.5·a·(1 + tanh(√(2/π)(a + 0.044715a³)))};
     * pre-activation width F.
     */
    GELU,
    /**
     * {@code h = silu(g) ⊙ u} where the pre-activation row is {@code [g | u]} (width 2F): the
     * gate and up projections share one GEMM.
     */
    SWIGLU;

    /** Width of the pre-activation for hidden width {@code f}. */
    public int preWidth(int f) {
        return this == SWIGLU ? 2 * f : f;
    }
}
