package io.roundhouse.worker;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/** A small NiNformer on the IDX fixture's 28×28 images, for the tests that train one through the trainer. */
final class NinformerFixtures {
    private NinformerFixtures() {
    }

    /**
     * 7×7 patches, D = 16, 2 blocks, 4 experts of hidden 12, dropless, batch 30, 60 validation
     * images; each test adds its steps, checkpoints and what it tests.
     */
    static Map<String, String> config(Path data, Path out) {
        Map<String, String> m = new HashMap<>();
        m.put("model.kind", "ninformer");
        m.put("data.dir", data.toString());
        m.put("data.validationExamples", "60");
        m.put("model.patchSize", "7");
        m.put("model.dim", "16");
        m.put("model.tokenHidden", "8");
        m.put("model.channelHidden", "24");
        m.put("model.experts", "4");
        m.put("model.expertHidden", "12");
        m.put("model.blocks", "2");
        m.put("model.capacityFactor", "0");
        m.put("train.batchSize", "30");
        m.put("train.warmupSteps", "3");
        m.put("train.evalBatchSize", "500");
        m.put("checkpoint.keep", "0");
        m.put("output.dir", out.toString());
        m.put("backend", "cpu");
        return m;
    }
}
