package io.roundhouse.kernels;

/** Element types a {@link Tensor} can hold. */
public enum DType {
    /** 32-bit IEEE float: activations, parameters, gradients. */
    FLOAT32,
    /** 32-bit signed integer: labels, expert indices, permutations. */
    INT32
}
