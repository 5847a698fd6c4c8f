package io.roundhouse.worker.model;

import java.util.List;
import java.util.Set;

/**
 * What a Self-Tuning Network adds to a model: the tuned hyperparameters (in the order of the
 * perturbation's columns) and the layers that get a response ({@code embed}, {@code router},
 * {@code experts}, {@code head}). Empty {@code tuned}: no STN, the model is the plain one.
 */
public record StnSpec(List<Hyper> tuned, Set<String> layers) {
    /** The layers a response can be attached to. */
    public static final List<String> LAYERS = List.of("embed", "router", "experts", "head");

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
