package io.roundhouse.worker.model;

import io.roundhouse.worker.config.ConfigException;
import io.roundhouse.worker.config.ConfigKey;
import io.roundhouse.worker.config.ConfigKeys;
import io.roundhouse.worker.config.JobConfig;
import java.util.Locale;
import java.util.Objects;

/**
 * Which router an MoE layer uses ({@code model.router}) and the keys only it reads.
 *
 * @param kind     how tokens choose their experts
 * @param biasRate {@link Kind#SIGMOID}: the step γ of the per-expert selection bias, updated after
 *                 every training step by γ·sign(mean load − the expert's load); 0 leaves it at zero
 */
public record RouterSpec(Kind kind, double biasRate) {
    public static final RouterSpec SOFTMAX = new RouterSpec(Kind.SOFTMAX, 0);

    public enum Kind {
        /** softmax over the logits, top-k, gates by {@code model.gate} (Switch, GShard, Mixtral). */
        SOFTMAX,
        /**
         * sigmoid scores, top-k of score + a per-expert bias that only selects, gates the chosen
         * scores normalised (DeepSeek-V3's auxiliary-loss-free balancing).
         */
        SIGMOID;

        public String configName() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /**
     * The router {@code c} names; refuses a key the router does not read when set to other than
     * its default (an option accepted and ignored would let a run differ silently from its config).
     */
    public static RouterSpec from(JobConfig c) {
        Kind kind = Kind.valueOf(c.get(ConfigKeys.MODEL_ROUTER).toUpperCase(Locale.ROOT));
        switch (kind) {
            case SOFTMAX -> refuseSet(c, ConfigKeys.MODEL_ROUTER_BIAS_RATE, kind,
                    "only model.router=sigmoid balances by a selection bias; remove it, or set model.router=sigmoid");
            case SIGMOID -> refuseSet(c, ConfigKeys.MODEL_GATE, kind,
                    "the sigmoid router's gates are its chosen scores normalised to sum 1; remove it, "
                            + "or set model.router=softmax");
            default -> throw new IllegalStateException("unhandled router " + kind);
        }
        return new RouterSpec(kind, kind == Kind.SIGMOID ? c.get(ConfigKeys.MODEL_ROUTER_BIAS_RATE) : 0);
    }

    private static void refuseSet(JobConfig c, ConfigKey<?> key, Kind kind, String why) {
        if (!Objects.equals(c.get(key), key.parse(key.defaultText()))) {
            throw new ConfigException(key.name() + " = " + c.asMap().get(key.name()) + ", but model.router="
                    + kind.configName() + " ignores it: " + why);
        }
    }
}
