package io.roundhouse.worker;

import io.roundhouse.worker.model.RouterSpec;

/** Each router with settings that exercise it in a short test. */
final class RouterFixtures {
    private RouterFixtures() {
    }

    /**
     * @param steps the steps a test runs (the dense-to-sparse temperature anneals over them)
     */
    static RouterSpec spec(RouterSpec.Kind kind, int steps) {
        return switch (kind) {
            case SOFTMAX -> RouterSpec.SOFTMAX;
            case SIGMOID -> new RouterSpec(kind, 0.05);
            case NOISY -> RouterSpec.of(kind).withNoiseLosses(0.1, 0.1);
            case DENSE_TO_SPARSE -> RouterSpec.of(kind).withTemperature(
                    new RouterSpec.Temperature(2.0, 0.3, "exponential", steps), 0.1, true, RouterSpec.BiasPlacement.OUTSIDE);
            case EXPERT_CHOICE -> RouterSpec.of(kind);
        };
    }
}
