package io.roundhouse.worker.robust;

import io.roundhouse.worker.config.ConfigException;
import io.roundhouse.worker.config.ConfigKey;
import io.roundhouse.worker.config.ConfigKeys;
import io.roundhouse.worker.config.JobConfig;
import java.util.List;
import java.util.Objects;

/**
 * Adversarial training's settings ({@code adv.*}): the mode, TRADES's β and the training attack.
 *
 * @param mode   off, TRADES, or AdvMoE's alternation
 * @param attack the training attack, in pixel units
 * @param beta   TRADES's weight of {@code KL(f(x) ‖ f(x'))}
 */
public record AdversarialSpec(Mode mode, Pgd.Attack attack, double beta) {
    /** {@code adv.training}. */
    public enum Mode { OFF, TRADES, ADVMOE }

    /** The keys only adversarial training reads. */
    private static final List<ConfigKey<?>> ATTACK_KEYS = List.of(ConfigKeys.ADV_EPSILON, ConfigKeys.ADV_STEPS,
            ConfigKeys.ADV_STEP_SIZE, ConfigKeys.ADV_RANDOM_START, ConfigKeys.ADV_BETA);

    /**
     * The settings of {@code config}; refuses attack keys set while {@code adv.training = off}
     * (they would be accepted and ignored).
     */
    public static AdversarialSpec from(JobConfig config) {
        Mode mode = switch (config.get(ConfigKeys.ADV_TRAINING)) {
            case "trades" -> Mode.TRADES;
            case "advmoe" -> Mode.ADVMOE;
            default -> Mode.OFF;
        };
        if (mode == Mode.OFF) {
            for (ConfigKey<?> k : ATTACK_KEYS) {
                if (!Objects.equals(config.get(k), k.parse(k.defaultText()))) {
                    throw new ConfigException(k.name() + " = " + config.asMap().get(k.name()) + ", but adv.training = "
                            + "off does not read it; set adv.training=trades or advmoe, or remove it");
                }
            }
        }
        double eps = config.get(ConfigKeys.ADV_EPSILON);
        double step = config.get(ConfigKeys.ADV_STEP_SIZE);
        return new AdversarialSpec(mode, new Pgd.Attack(eps, step > 0 ? step : eps / 4, config.get(ConfigKeys.ADV_STEPS),
                config.get(ConfigKeys.ADV_RANDOM_START).equals("on")), config.get(ConfigKeys.ADV_BETA));
    }

    public boolean on() {
        return mode != Mode.OFF;
    }

    /** How the run's header names it. */
    public String describe() {
        Pgd.Attack a = attack;
        return String.format(java.util.Locale.ROOT, "adversarial training: %s, beta %.3g; PGD eps %.4g, %d steps of "
                + "%.4g%s", mode == Mode.TRADES ? "TRADES" : "AdvMoE (TRADES, routers alternating)", beta, a.epsilon(),
                a.steps(), a.stepSize(), a.randomStart() ? ", random start" : "");
    }
}
