package io.roundhouse.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.roundhouse.worker.config.ConfigException;
import io.roundhouse.worker.config.ConfigKey;
import io.roundhouse.worker.config.JobConfig;
import io.roundhouse.worker.train.ModelKind;
import io.roundhouse.worker.train.Trainer;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The trainer's preflight refuses a key the chosen {@code model.kind} does not read (set to other
 * than its default), with one line naming the key, its value, the kind and the fix; the shipped
 * configs pass it.
 */
class PreflightTest {
    @TempDir
    Path tmp;

    /** A value other than the default for every key one of the kinds ignores. */
    private static final Map<String, String> LM_IGNORES = new LinkedHashMap<>(Map.of(
            "model.dropout.input", "0.2", "augment.shift", "1", "data.dir", "/srv/images", "data.format", "parquet",
            "data.validationExamples", "100", "data.distribution", "partitioned"));
    private static final Map<String, String> CLASSIFIER_IGNORES = new LinkedHashMap<>(Map.of(
            "model.heads", "8", "model.kvHeads", "2", "model.ropeTheta", "500000", "model.moeEvery", "2",
            "model.denseHidden", "64", "model.attentionGate", "off", "model.dropout.attention", "0.1",
            "data.text", "/srv/text.txt", "data.seqLen", "64", "data.validationFraction", "0.1"));

    /** The keys only the NiNformer reads (patches). */
    private static final Map<String, String> PATCH_KEYS = Map.of("model.patchSize", "7", "model.tokenHidden", "32",
            "model.channelHidden", "64");
    private static final Map<String, String> NINFORMER_IGNORES = new LinkedHashMap<>(Map.of(
            "model.heads", "8", "model.kvHeads", "2", "model.ropeTheta", "500000", "model.attentionGate", "off",
            "model.dropout.attention", "0.1", "model.tieEmbeddings", "on", "data.text", "/srv/text.txt",
            "data.seqLen", "64", "data.validationFraction", "0.1"));

    static {
        CLASSIFIER_IGNORES.put("model.tieEmbeddings", "on");
        CLASSIFIER_IGNORES.putAll(PATCH_KEYS);
        LM_IGNORES.putAll(PATCH_KEYS);
        LM_IGNORES.put("adv.training", "trades");
    }

    private static Map<String, String> ignoredBy(ModelKind kind) {
        return switch (kind) {
            case CLASSIFIER -> CLASSIFIER_IGNORES;
            case LANGUAGE_MODEL -> LM_IGNORES;
            case NINFORMER -> NINFORMER_IGNORES;
        };
    }

    private Map<String, String> base(String kind) {
        Map<String, String> m = new HashMap<>();
        m.put("model.kind", kind);
        m.put("output.dir", tmp.resolve("runs").toString());
        m.put("backend", "cpu");
        return m;
    }

    private static void preflight(JobConfig config) {
        new Trainer(config, new PrintStream(new ByteArrayOutputStream())).preflight();
    }

    private static String refusal(Map<String, String> overrides) {
        return assertThrows(ConfigException.class, () -> preflight(JobConfig.of(overrides))).getMessage();
    }

    @Test
    void aKeyTheLanguageModelIgnoresIsRefusedWithTheKeyToUse() {
        Map<String, String> m = base("lm");
        m.put("data.validationExamples", "100");
        assertEquals("data.validationExamples = 100, but model.kind=lm ignores it: the language model holds out "
                + "the last data.validationFraction of the text; remove it, and set data.validationFraction instead",
                refusal(m));
    }

    @Test
    void aKeyTheClassifierIgnoresIsRefusedWithTheFix() throws Exception {
        Map<String, String> m = base("classifier");
        m.put("data.dir", IdxFixtures.write(tmp.resolve("data"), 100, 20, 1).toString());
        m.put("model.heads", "8");
        assertEquals("model.heads = 8, but model.kind=classifier ignores it: the classifier has no attention; "
                + "remove it, or set model.kind=lm to train the language model", refusal(m));
        assertFalse(Files.exists(tmp.resolve("runs")), "a refused job writes nothing");
    }

    @Test
    void everyKeyOfTheTableIsRefusedForItsKindAndOnlyThose() throws Exception {
        for (ModelKind kind : ModelKind.values()) {
            Map<String, String> ignored = ignoredBy(kind);
            assertEquals(ignored.keySet(), kind.ignoredKeys().stream().map(k -> k.key().name())
                    .collect(Collectors.toSet()), kind + "'s table");
            for (Map.Entry<String, String> e : ignored.entrySet()) {
                Map<String, String> m = base(kind.configName());
                m.put(e.getKey(), e.getValue());
                String message = refusal(m);
                assertTrue(message.startsWith(e.getKey() + " = " + e.getValue() + ", but model.kind="
                        + kind.configName() + " ignores it: "), message);
                assertFalse(message.contains("\n"), "one line: " + message);
            }
        }
        // What the language model ignores, the classifier reads, but for the patches only the NiNformer reads.
        Set<String> both = LM_IGNORES.keySet().stream().filter(CLASSIFIER_IGNORES::containsKey)
                .collect(Collectors.toSet());
        assertEquals(PATCH_KEYS.keySet(), both);
        // The NiNformer reads every key the classifier reads but the language model's.
        Set<String> ninformerReads = new java.util.HashSet<>(CLASSIFIER_IGNORES.keySet());
        ninformerReads.removeAll(NINFORMER_IGNORES.keySet());
        assertEquals(Set.of("model.moeEvery", "model.denseHidden", "model.patchSize", "model.tokenHidden",
                "model.channelHidden"), ninformerReads);
    }

    @Test
    void aKeyGivenItsDefaultValuePasses() {
        Map<String, String> m = base("lm");
        for (ModelKind.IgnoredKey k : ModelKind.LANGUAGE_MODEL.ignoredKeys()) {
            ConfigKey<?> key = k.key();
            m.put(key.name(), key.defaultText());
        }
        m.put("model.dropout.input", "0.10");  // the default, written otherwise
        preflight(JobConfig.of(m));
    }

    @Test
    void theShippedConfigsPassForTheirKind() throws Exception {
        Map<String, String> out = Map.of("output.dir", tmp.resolve("runs").toString());
        JobConfig lm = JobConfig.load(Path.of("..", "conf", "kjv-moe-lm.conf"), out);
        assertEquals(ModelKind.LANGUAGE_MODEL, ModelKind.of(lm));
        preflight(lm);

        // The classifier's config lists every key with its default, the language model's included.
        Path classifierConf = Path.of("..", "conf", "fashion-mnist-moe.conf");
        Map<String, String> images = new HashMap<>(out);
        images.put("data.dir", IdxFixtures.write(tmp.resolve("data"), 100, 20, 1).toString());
        JobConfig classifier = JobConfig.load(classifierConf, images);
        assertEquals(ModelKind.CLASSIFIER, ModelKind.of(classifier));
        preflight(classifier);
        // ... so switching it to the language model on the command line passes too.
        Map<String, String> switched = new HashMap<>(out);
        switched.put("model.kind", "lm");
        preflight(JobConfig.load(classifierConf, switched));

        // The image models' configs: the NiNformer's and AdvMoE's train; the early exits' is read by
        // roundhouse early-exit alone (a training run refuses its keys).
        JobConfig ninformer = JobConfig.load(Path.of("..", "conf", "fashion-ninformer.conf"), images);
        assertEquals(ModelKind.NINFORMER, ModelKind.of(ninformer));
        preflight(ninformer);
        JobConfig advmoe = JobConfig.load(Path.of("..", "conf", "fashion-advmoe.conf"), images);
        assertEquals("advmoe", advmoe.get(io.roundhouse.worker.config.ConfigKeys.ADV_TRAINING));
        preflight(advmoe);
        JobConfig exits = JobConfig.load(Path.of("..", "conf", "fashion-early-exit.conf"), images);
        io.roundhouse.worker.exit.EarlyExitRun.check(exits);
        assertThrows(ConfigException.class, () -> preflight(exits));
        assertFalse(Files.exists(tmp.resolve("runs")), "preflight writes nothing");
    }
}
