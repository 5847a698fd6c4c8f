package io.roundhouse.worker.model;

import io.roundhouse.worker.config.ConfigKey;
import io.roundhouse.worker.config.ConfigKeys;

/**
 * The regularisation hyperparameters a Self-Tuning Network can tune, each with the config key that
 * gives its initial (or fixed) value and the transform from the unconstrained value u the tuner
 * steps: bounded ones through a sigmoid stretched to their range, positive ones through softplus,
 * integers as the floor of a sigmoid stretched over their range. Every one acts per row (a
 * classifier's example, a language model's token), so a weight step can give each row its own
 * perturbed value. Which ones a model can tune is the model's {@code TUNABLE}.
 */
public enum Hyper {
    /** Dropout rate on the input pixels, in [0, 0.9]. */
    DROPOUT_INPUT("dropout.input", ConfigKeys.MODEL_DROPOUT_INPUT, Transform.BOUNDED, 0, 0.9),
    /** Dropout rate on each MoE block's output (a transformer block's two residual branches), in [0, 0.9]. */
    DROPOUT_BLOCK("dropout.block", ConfigKeys.MODEL_DROPOUT_BLOCK, Transform.BOUNDED, 0, 0.9),
    /** Dropout rate on the attention probabilities (per query row), in [0, 0.9]. */
    DROPOUT_ATTENTION("dropout.attention", ConfigKeys.MODEL_DROPOUT_ATTENTION, Transform.BOUNDED, 0, 0.9),
    /** Amplitude of the router's multiplicative input noise, in [0, 0.5]. */
    ROUTER_JITTER("router.jitter", ConfigKeys.MODEL_ROUTER_JITTER, Transform.BOUNDED, 0, 0.5),
    /** Load-balancing loss coefficient α (per token), positive. */
    LOAD_BALANCE("loss.loadBalance", ConfigKeys.LOSS_LOAD_BALANCE, Transform.POSITIVE, 0, Double.POSITIVE_INFINITY),
    /** Router z-loss coefficient β (per token), positive. */
    Z_LOSS("loss.zLoss", ConfigKeys.LOSS_Z, Transform.POSITIVE, 0, Double.POSITIVE_INFINITY),
    /** Image shift of the augmentation, in pixels, an integer in [0, 8]. */
    AUGMENT_SHIFT("augment.shift", ConfigKeys.AUGMENT_SHIFT, Transform.INTEGER, 0, 8);

    /** How the unconstrained value maps to the hyperparameter. */
    public enum Transform { BOUNDED, POSITIVE, INTEGER }

    private final String id;
    private final ConfigKey<? extends Number> initial;
    private final Transform transform;
    private final double lo;
    private final double hi;

    Hyper(String id, ConfigKey<? extends Number> initial, Transform transform, double lo, double hi) {
        this.id = id;
        this.initial = initial;
        this.transform = transform;
        this.lo = lo;
        this.hi = hi;
    }

    /** The name used in {@code stn.tune} and in the metrics. */
    public String id() {
        return id;
    }

    /** The key that gives the initial value (and the fixed value when not tuned). */
    public ConfigKey<? extends Number> initialKey() {
        return initial;
    }

    public Transform transform() {
        return transform;
    }

    /** The hyperparameter for an unconstrained value u. */
    public double value(double u) {
        return switch (transform) {
            case BOUNDED -> lo + (hi - lo) * sigmoid(u);
            case POSITIVE -> softplus(u);
            case INTEGER -> Math.min(hi, Math.floor(lo + (hi - lo + 1) * sigmoid(u)));
        };
    }

    /** The unconstrained value of a hyperparameter strictly inside its range. */
    public double unconstrained(double value) {
        if (transform != Transform.INTEGER && !(value > lo && value < hi)) {
            throw new IllegalArgumentException(initial.name() + " = " + value + " is not inside (" + lo + ", "
                    + (hi == Double.POSITIVE_INFINITY ? "inf" : hi) + "), where a Self-Tuning Network can start it; "
                    + "set it inside, e.g. " + initial.name() + "=" + suggestion());
        }
        return switch (transform) {
            case BOUNDED -> logit((value - lo) / (hi - lo));
            case POSITIVE -> value > 30 ? value : Math.log(Math.expm1(value));
            case INTEGER -> logit((value - lo + 0.5) / (hi - lo + 1));  // the middle of the value's interval
        };
    }

    private String suggestion() {
        return transform == Transform.POSITIVE ? "0.001"
                : String.format(java.util.Locale.ROOT, "%.2g", lo + (hi - lo) * 0.05);
    }

    /** The hyperparameter named {@code id} ({@code dropout.input}, ...). */
    public static Hyper byId(String id) {
        for (Hyper h : values()) {
            if (h.id.equals(id.trim())) {
                return h;
            }
        }
        return null;
    }

    public static double sigmoid(double x) {
        return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
    }

    public static double softplus(double x) {
        return x > 30 ? x : Math.log1p(Math.exp(x));
    }

    static double logit(double p) {
        return Math.log(p / (1 - p));
    }
}
