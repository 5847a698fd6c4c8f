package io.roundhouse.worker;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/** A classifier run small enough for a test: 2 steps on IDX fixtures, a checkpoint after the last. */
final class ClassifierFixtures {
    private ClassifierFixtures() {
    }

    /** Writes the images into {@code data} (once) and returns the run's config; runs go under {@code out}. */
    static Map<String, String> config(Path data, Path out) throws IOException {
        if (!Files.exists(data)) {
            IdxFixtures.write(data, 200, 20, 5);
        }
        Map<String, String> m = new HashMap<>();
        m.put("data.dir", data.toString());
        m.put("data.validationExamples", "20");
        m.put("model.dim", "8");
        m.put("model.experts", "4");
        m.put("model.expertHidden", "8");
        m.put("train.maxSteps", "2");
        m.put("train.batchSize", "20");
        m.put("checkpoint.everySteps", "2");
        m.put("output.dir", out.toString());
        m.put("backend", "cpu");
        return m;
    }
}
