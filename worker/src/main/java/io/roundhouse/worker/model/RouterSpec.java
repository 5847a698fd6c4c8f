package io.roundhouse.worker.model;

import io.roundhouse.worker.config.ConfigException;
import io.roundhouse.worker.config.ConfigKey;
import io.roundhouse.worker.config.ConfigKeys;
import io.roundhouse.worker.config.JobConfig;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * Which router an MoE layer uses ({@code model.router}) and the keys only it reads.
 *
 * @param kind        how tokens choose their experts
 * @param biasRate    {@link Kind#SIGMOID}: the step γ of the per-expert selection bias, updated after
 *                    every training step by γ·sign(mean load − the expert's load); 0 leaves it at zero
 * @param temperature {@link Kind#DENSE_TO_SPARSE}: the softmax temperature over the steps
 * @param threshold   {@link Kind#DENSE_TO_SPARSE}: the least gate a copy needs (0: plain top-k)
 * @param activation  {@link Kind#DENSE_TO_SPARSE}: σ between the linear router and the temperature
 *                    (the activation dense-to-sparse gate) or none (the temperature gate)
 * @param bias        {@link Kind#DENSE_TO_SPARSE}: where its learnt per-expert bias sits
 * @param causal      {@link Kind#EXPERT_CHOICE}: the model is a causal language model (expert
 *                    choice then trains with the batch's choice and evaluates with token choice)
 * @param importance  {@link Kind#NOISY}: the importance loss's coefficient
 * @param load        {@link Kind#NOISY}: the load loss's coefficient
 * @param preGating   each MoE layer's router reads the previous MoE layer's input (Pre-gated MoE)
 */
public record RouterSpec(Kind kind, double biasRate, Temperature temperature, double threshold, boolean activation,
                         BiasPlacement bias, boolean causal, double importance, double load, boolean preGating) {
    public static final RouterSpec SOFTMAX = of(Kind.SOFTMAX);

    public enum Kind {
        /** softmax over the logits, top-k, gates by {@code model.gate} (Switch, GShard, Mixtral). */
        SOFTMAX,
        /**
         * sigmoid scores, top-k of score + a per-expert bias that only selects, gates the chosen
         * scores normalised (DeepSeek-V3's auxiliary-loss-free balancing).
         */
        SIGMOID,
        /** learned Gaussian noise on the logits in training, top-k, importance and load losses (Shazeer 2017). */
        NOISY,
        /** softmax with an annealed temperature, every expert over a threshold, at most K (dense to sparse). */
        DENSE_TO_SPARSE,
        /** each expert takes its top-c tokens of the global batch by softmax score (Zhou 2022). */
        EXPERT_CHOICE;

        public String configName() {
            return name().toLowerCase(Locale.ROOT).replace('_', '-');
        }

        static Kind byConfigName(String s) {
            return valueOf(s.toUpperCase(Locale.ROOT).replace('-', '_'));
        }
    }

    /** Where the dense-to-sparse router's learnt bias b sits. */
    public enum BiasPlacement {
        /** no bias. */
        NONE,
        /** {@code softmax(a(xW + b)/τ)}: before the activation and the temperature. */
        INSIDE,
        /** {@code softmax(a(xW)/τ + b)}: after both. */
        OUTSIDE
    }

    /**
     * A temperature schedule: {@code start} at step 0, {@code end} from {@code steps} on, moving
     * linearly, along half a cosine, or geometrically ({@code exponential}) in between.
     */
    public record Temperature(double start, double end, String shape, long steps) {
        public static final Temperature NONE = new Temperature(1, 1, "linear", 1);

        /** τ at optimizer step {@code step} (steps before the first update are step 0). */
        public double at(long step) {
            double p = Math.min(1.0, Math.max(0, step) / (double) steps);
            return switch (shape) {
                case "linear" -> start + (end - start) * p;
                case "cosine" -> end + (start - end) * 0.5 * (1 + Math.cos(Math.PI * p));
                case "exponential" -> start * Math.pow(end / start, p);
                default -> throw new IllegalStateException("unknown temperature shape " + shape);
            };
        }
    }

    /** A router of {@code kind} with every other setting at its key's default. */
    public static RouterSpec of(Kind kind) {
        return new RouterSpec(kind, kind == Kind.SIGMOID ? 0.001 : 0, Temperature.NONE, 0, false, BiasPlacement.NONE,
                false, 0.01, 0.01, false);
    }

    /** A softmax or sigmoid router (the sigmoid one's bias moving by {@code biasRate}). */
    public RouterSpec(Kind kind, double biasRate) {
        this(kind, biasRate, Temperature.NONE, 0, false, BiasPlacement.NONE, false, 0.01, 0.01, false);
    }

    public RouterSpec withTemperature(Temperature t, double threshold, boolean activation, BiasPlacement bias) {
        return new RouterSpec(kind, biasRate, t, threshold, activation, bias, causal, importance, load, preGating);
    }

    public RouterSpec withCausal(boolean c) {
        return new RouterSpec(kind, biasRate, temperature, threshold, activation, bias, c, importance, load, preGating);
    }

    public RouterSpec withNoiseLosses(double importance, double load) {
        return new RouterSpec(kind, biasRate, temperature, threshold, activation, bias, causal, importance, load,
                preGating);
    }

    public RouterSpec withPreGating(boolean on) {
        return new RouterSpec(kind, biasRate, temperature, threshold, activation, bias, causal, importance, load, on);
    }

    /** Keys only some routers read, and which. */
    private static final Map<ConfigKey<?>, Set<Kind>> READERS = new LinkedHashMap<>();

    static {
        READERS.put(ConfigKeys.MODEL_GATE, EnumSet.of(Kind.SOFTMAX, Kind.NOISY));
        READERS.put(ConfigKeys.LOSS_LOAD_BALANCE, EnumSet.of(Kind.SOFTMAX, Kind.SIGMOID, Kind.DENSE_TO_SPARSE));
        READERS.put(ConfigKeys.MODEL_ROUTER_BIAS_RATE, EnumSet.of(Kind.SIGMOID));
        for (ConfigKey<?> k : new ConfigKey<?>[] {ConfigKeys.MODEL_TEMPERATURE_START, ConfigKeys.MODEL_TEMPERATURE_END,
                ConfigKeys.MODEL_TEMPERATURE_SHAPE, ConfigKeys.MODEL_TEMPERATURE_STEPS, ConfigKeys.MODEL_ROUTER_THRESHOLD,
                ConfigKeys.MODEL_ROUTER_ACTIVATION, ConfigKeys.MODEL_ROUTER_BIAS}) {
            READERS.put(k, EnumSet.of(Kind.DENSE_TO_SPARSE));
        }
        READERS.put(ConfigKeys.MODEL_EXPERT_CHOICE_CAUSAL, EnumSet.of(Kind.EXPERT_CHOICE));
        READERS.put(ConfigKeys.LOSS_IMPORTANCE, EnumSet.of(Kind.NOISY));
        READERS.put(ConfigKeys.LOSS_LOAD, EnumSet.of(Kind.NOISY));
    }

    /**
     * The router {@code c} names; refuses a key the router does not read when set to other than
     * its default (an option accepted and ignored would let a run differ silently from its config).
     */
    public static RouterSpec from(JobConfig c) {
        Kind kind = Kind.byConfigName(c.get(ConfigKeys.MODEL_ROUTER));
        READERS.forEach((key, readers) -> {
            if (!readers.contains(kind) && !Objects.equals(c.get(key), key.parse(key.defaultText()))) {
                throw new ConfigException(key.name() + " = " + c.asMap().get(key.name()) + ", but model.router="
                        + kind.configName() + " ignores it (only " + readers.stream().map(Kind::configName)
                        .collect(Collectors.joining(", ")) + " read" + (readers.size() == 1 ? "s" : "")
                        + " it): remove it, or choose such a router");
            }
        });
        if (!READERS.get(ConfigKeys.LOSS_LOAD_BALANCE).contains(kind)
                && c.get(ConfigKeys.STN_TUNE).contains(Hyper.LOAD_BALANCE.id())) {
            throw new ConfigException("stn.tune lists " + Hyper.LOAD_BALANCE.id() + ", but model.router="
                    + kind.configName() + " has no Switch load-balancing loss: remove it from stn.tune");
        }
        boolean lm = "lm".equals(c.get(ConfigKeys.MODEL_KIND));
        RouterSpec r = of(kind);
        switch (kind) {
            case SOFTMAX -> {
            }
            case SIGMOID -> r = new RouterSpec(kind, c.get(ConfigKeys.MODEL_ROUTER_BIAS_RATE));
            case NOISY -> r = r.withNoiseLosses(c.get(ConfigKeys.LOSS_IMPORTANCE), c.get(ConfigKeys.LOSS_LOAD));
            case DENSE_TO_SPARSE -> {
                long steps = c.get(ConfigKeys.MODEL_TEMPERATURE_STEPS);
                if (steps == 0) {
                    steps = c.get(ConfigKeys.TRAIN_MAX_STEPS);
                    if (steps == 0) {
                        throw new ConfigException("model.router=dense-to-sparse anneals its temperature over "
                                + "model.temperature.steps, which is 0 (= train.maxSteps), and train.maxSteps is 0 "
                                + "too (the run is counted in epochs): set model.temperature.steps");
                    }
                }
                r = r.withTemperature(new Temperature(c.get(ConfigKeys.MODEL_TEMPERATURE_START),
                                c.get(ConfigKeys.MODEL_TEMPERATURE_END), c.get(ConfigKeys.MODEL_TEMPERATURE_SHAPE), steps),
                        c.get(ConfigKeys.MODEL_ROUTER_THRESHOLD), "sigmoid".equals(c.get(ConfigKeys.MODEL_ROUTER_ACTIVATION)),
                        BiasPlacement.valueOf(c.get(ConfigKeys.MODEL_ROUTER_BIAS).toUpperCase(Locale.ROOT)));
            }
            case EXPERT_CHOICE -> {
                if (lm && !"on".equals(c.get(ConfigKeys.MODEL_EXPERT_CHOICE_CAUSAL))) {
                    throw new ConfigException("model.router=expert-choice in a language model lets a token's experts "
                            + "depend on later tokens of the batch (information flows backwards in training): set "
                            + "model.expertChoiceCausal=on to accept that (evaluation then uses token choice), or "
                            + "choose another router");
                }
                if (c.get(ConfigKeys.MODEL_CAPACITY_FACTOR) <= 0) {
                    throw new ConfigException("model.router=expert-choice sizes each expert's pick by "
                            + "model.capacityFactor (c = factor * K * tokens / E), which is 0: set it > 0 (1 gives "
                            + "K experts per token on average)");
                }
                r = r.withCausal(lm);
            }
            default -> throw new IllegalStateException("unhandled router " + kind);
        }
        if ("on".equals(c.get(ConfigKeys.MODEL_PRE_GATING))) {
            if (kind == Kind.EXPERT_CHOICE) {
                throw new ConfigException("model.preGating=on and model.router=expert-choice: expert choice picks "
                        + "each layer's tokens from that layer's own scores over the global batch; turn one off");
            }
            int blocks = c.get(ConfigKeys.MODEL_BLOCKS);
            int every = c.get(ConfigKeys.MODEL_MOE_EVERY);
            int moeLayers = !lm ? blocks : every == 0 ? 0 : blocks / every;
            if (moeLayers < 2) {
                throw new ConfigException("model.preGating=on routes each MoE layer from the previous one's input, "
                        + "and this model has " + moeLayers + " MoE layer" + (moeLayers == 1 ? "" : "s")
                        + ": turn it off, or give the model more MoE blocks");
            }
            r = r.withPreGating(true);
        }
        return r;
    }
}
