package io.roundhouse.worker;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;

/** A small text with structure and a tiny language model's job settings, for trainer-level LM tests. */
final class LmFixtures {
    private static final String[] WORDS = {"and", "the", "earth", "was", "without", "form", "void", "light", "God",
        "said"};

    private LmFixtures() {
    }

    /** About {@code bytes} bytes of numbered lines of {@code wordsPerLine} words drawn with {@code seed}. */
    static Path corpus(Path file, long seed, int bytes, int wordsPerLine) throws IOException {
        StringBuilder sb = new StringBuilder();
        Random r = new Random(seed);
        for (int line = 1; sb.length() < bytes; line++) {
            sb.append(line).append(' ');
            for (int w = 0; w < wordsPerLine; w++) {
                sb.append(WORDS[r.nextInt(WORDS.length)]).append(w == wordsPerLine - 1 ? ".\n" : " ");
            }
        }
        return Files.writeString(file, sb.toString());
    }

    /**
     * A tiny dropless MoE LM (D 16, 2 blocks, 2 heads, 4 SwiGLU experts) on {@code text}: T 16, 10%
     * validation, batch 6, {@code steps} steps, a checkpoint every 6, on the CPU, into {@code out}.
     */
    static Map<String, String> config(Path text, Path out, int steps) {
        Map<String, String> m = new HashMap<>();
        m.put("model.kind", "lm");
        m.put("data.text", text.toString());
        m.put("data.seqLen", "16");
        m.put("data.validationFraction", "0.1");
        m.put("model.dim", "16");
        m.put("model.blocks", "2");
        m.put("model.heads", "2");
        m.put("model.experts", "4");
        m.put("model.expertHidden", "8");
        m.put("model.activation", "swiglu");
        m.put("model.norm", "rmsnorm");
        m.put("model.capacityFactor", "0");
        m.put("model.dropout.block", "0.1");
        m.put("model.dropout.attention", "0.1");
        m.put("train.maxSteps", String.valueOf(steps));
        m.put("train.batchSize", "6");
        m.put("train.warmupSteps", "2");
        m.put("train.evalBatchSize", "6");
        m.put("checkpoint.everySteps", "6");
        m.put("checkpoint.keep", "0");
        m.put("output.dir", out.toString());
        m.put("log.everySteps", "6");
        m.put("backend", "cpu");
        return m;
    }
}
