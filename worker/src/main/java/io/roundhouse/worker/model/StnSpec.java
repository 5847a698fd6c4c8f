package io.roundhouse.worker.model;

import io.roundhouse.worker.config.ConfigException;
import java.util.Collection;
import java.util.List;
import java.util.Set;

/**
 * What a Self-Tuning Network adds to a model: the tuned hyperparameters (in the order of the
 * perturbation's columns) and the layers that get a response ({@code embed}, {@code attention},
 * {@code router}, {@code experts}, {@code head}). Empty {@code tuned}: no STN, the model is the
 * plain one. Each model says which hyperparameters and layers it has ({@link #check}).
 */
public record StnSpec(List<Hyper> tuned, Set<String> layers) {
    /** The layers a response can be attached to. */
    public static final List<String> LAYERS = List.of("embed", "attention", "router", "experts", "head");

    public static final StnSpec NONE = new StnSpec(List.of(), Set.of());

    public StnSpec {
        tuned = List.copyOf(tuned);
        layers = Set.copyOf(layers);
        for (String l : layers) {
            if (!LAYERS.contains(l)) {
                throw new IllegalArgumentException("no STN layer '" + l + "'; known: " + LAYERS);
            }
        }
    }

    /**
     * Refuses what {@code model} does not have: a tuned hyperparameter outside {@code tunable}, a
     * response layer outside {@code layers}.
     */
    public void check(String model, Collection<Hyper> tunable, List<String> layers) {
        if (!enabled()) {
            return;
        }
        for (Hyper h : tuned) {
            if (!tunable.contains(h)) {
                throw new ConfigException("stn.tune includes " + h.id() + ", which the " + model + " does not have; "
                        + "it can tune " + String.join(", ", tunable.stream().map(Hyper::id).toList()));
            }
        }
        for (String l : this.layers) {
            if (!layers.contains(l)) {
                throw new ConfigException("stn.layers includes " + l + ", which the " + model + " does not have; "
                        + "choose from " + String.join(", ", layers));
            }
        }
    }

    public boolean enabled() {
        return !tuned.isEmpty();
    }

    /** Column of {@code h} in the perturbation, or -1 when it is not tuned. */
    public int column(Hyper h) {
        return tuned.indexOf(h);
    }

    public boolean has(String layer) {
        return enabled() && layers.contains(layer);
    }
}
