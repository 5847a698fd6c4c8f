package io.roundhouse.worker.model;

/** Normalisation layer type. */
public enum NormKind {
    /** LayerNorm with gain and bias. */
    LAYERNORM,
    /** RMSNorm with gain only. */
    RMSNORM
}
