package io.roundhouse.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.roundhouse.worker.config.ConfigException;
import io.roundhouse.worker.config.ConfigKey;
import io.roundhouse.worker.config.ConfigKeys;
import io.roundhouse.worker.config.JobConfig;
import io.roundhouse.worker.model.RouterSpec;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class JobConfigTest {
    @TempDir
    Path dir;

    private static String error(Map<String, String> overrides) {
        return assertThrows(ConfigException.class, () -> JobConfig.of(overrides)).getMessage();
    }

    @Test
    void everyKeyHasADocAndAValidDefault() {
        Set<String> names = new HashSet<>();
        for (ConfigKey<?> k : ConfigKeys.ALL) {
            assertTrue(names.add(k.name()), "key " + k + " is registered twice");
            assertFalse(k.doc().isBlank(), "key " + k + " has no documentation");
            k.parse(k.defaultText());
        }
        JobConfig c = JobConfig.defaults();
        assertEquals(8, c.get(ConfigKeys.MODEL_EXPERTS));
    }

    @Test
    void theShippedConfigListsEveryKeyWithItsDefault() throws IOException {
        Path conf = Path.of("..", "conf", "fashion-mnist-moe.conf");
        List<String> lines = Files.readAllLines(conf);
        for (ConfigKey<?> k : ConfigKeys.ALL) {
            assertTrue(lines.stream().anyMatch(l -> l.replace(" ", "").equals(k.name() + "=" + k.defaultText())),
                    conf + " does not set " + k.name() + " = " + k.defaultText());
            assertTrue(lines.stream().anyMatch(l -> l.startsWith("#") && l.contains(k.doc())),
                    conf + " does not document " + k.name());
        }
        assertEquals(JobConfig.defaults().asMap(), JobConfig.load(conf, Map.of()).asMap());
    }

    @Test
    void aRouterRefusesTheKeysOfAnother() {
        ConfigException sigmoid = assertThrows(ConfigException.class, () -> RouterSpec.from(JobConfig.of(
                Map.of("model.router", "sigmoid", "model.gate", "softmax_topk"))));
        assertEquals("model.gate = softmax_topk, but model.router=sigmoid ignores it (only softmax, noisy read it): "
                + "remove it, or choose such a router", sigmoid.getMessage());
        ConfigException softmax = assertThrows(ConfigException.class, () -> RouterSpec.from(JobConfig.of(
                Map.of("model.routerBiasRate", "0.01"))));
        assertTrue(softmax.getMessage().startsWith("model.routerBiasRate = 0.01, but model.router=softmax ignores it"),
                softmax.getMessage());
        assertEquals(new RouterSpec(RouterSpec.Kind.SIGMOID, 0.002), RouterSpec.from(JobConfig.of(
                Map.of("model.router", "sigmoid", "model.routerBiasRate", "0.002"))));
        assertEquals(RouterSpec.SOFTMAX, RouterSpec.from(JobConfig.defaults()));
        assertTrue(error(Map.of("model.router", "expert_choice")).contains("model.router"), "a misspelt router is refused");
        for (String[] bad : new String[][] {
                {"model.router", "expert-choice", "loss.importance", "0.1"},
                {"model.router", "noisy", "model.temperature.end", "0.5"},
                {"model.router", "dense-to-sparse", "model.temperature.steps", "100", "model.expertChoiceCausal", "on"},
                {"model.router", "noisy", "loss.loadBalance", "0.1"}}) {
            Map<String, String> m = new java.util.HashMap<>();
            for (int j = 0; j < bad.length; j += 2) {
                m.put(bad[j], bad[j + 1]);
            }
            String why = assertThrows(ConfigException.class, () -> RouterSpec.from(JobConfig.of(m))).getMessage();
            assertTrue(why.contains("but model.router=" + bad[1] + " ignores it"), why);
        }
        String epochs = assertThrows(ConfigException.class, () -> RouterSpec.from(JobConfig.of(
                Map.of("model.router", "dense-to-sparse")))).getMessage();
        assertTrue(epochs.contains("set model.temperature.steps"), epochs);
        String causal = assertThrows(ConfigException.class, () -> RouterSpec.from(JobConfig.of(
                Map.of("model.router", "expert-choice", "model.kind", "lm")))).getMessage();
        assertTrue(causal.contains("model.expertChoiceCausal=on"), causal);
        assertTrue(RouterSpec.from(JobConfig.of(Map.of("model.router", "expert-choice", "model.kind", "lm",
                "model.expertChoiceCausal", "on"))).causal());
        String dropless = assertThrows(ConfigException.class, () -> RouterSpec.from(JobConfig.of(
                Map.of("model.router", "expert-choice", "model.capacityFactor", "0")))).getMessage();
        assertTrue(dropless.contains("model.capacityFactor"), dropless);
        RouterSpec d2s = RouterSpec.from(JobConfig.of(Map.of("model.router", "dense-to-sparse", "train.maxSteps", "400",
                "model.routerActivation", "sigmoid", "model.routerBias", "outside")));
        assertEquals(400, d2s.temperature().steps());
        assertTrue(d2s.activation());
        assertEquals(RouterSpec.BiasPlacement.OUTSIDE, d2s.bias());
        assertEquals(2.0, d2s.temperature().at(0), 1e-12);
        assertEquals(Math.sqrt(2.0 * 0.1), d2s.temperature().at(200), 1e-12, "exponential: the geometric mean halfway");
        assertEquals(0.1, d2s.temperature().at(10_000), 1e-12, "the end temperature after the anneal");
    }

    @Test
    void unknownKeySuggestsTheNearestOne() {
        assertEquals("command line: unknown key 'model.expert'; did you mean model.experts? "
                + "(run 'roundhouse config' to list every key)", error(Map.of("model.expert", "4")));
    }

    @Test
    void topKLargerThanExperts() {
        assertEquals("model.topK = 5 is larger than model.experts = 4: each token can go to at most every expert "
                + "once; lower model.topK or raise model.experts", error(Map.of("model.topK", "5", "model.experts", "4")));
    }

    @Test
    void negativeCapacityFactor() {
        String m = error(Map.of("model.capacityFactor", "-1"));
        assertTrue(m.startsWith("model.capacityFactor = '-1': out of range; expected a number in [0.0, 64.0]"), m);
        assertTrue(m.endsWith("[set in command line]"), m);
    }

    @Test
    void badNumbersAndChoices() {
        assertTrue(error(Map.of("train.batchSize", "many")).startsWith("train.batchSize = 'many': not an integer"));
        assertTrue(error(Map.of("model.dropout.block", "0.95")).contains("expected a number in [0.0, 0.9]"));
        assertTrue(error(Map.of("model.gate", "sparsemax")).contains(
                "expected one of [softmax_topk, softmax_topk_renorm, topk_softmax]"));
        assertTrue(error(Map.of("backend", "tpu")).contains("expected one of [auto, cpu, cuda]"));
    }

    @Test
    void fileThenOverrides() throws IOException {
        Path f = dir.resolve("job.conf");
        Files.writeString(f, "# a comment\n\nmodel.experts = 4\ntrain.epochs=3\n");
        JobConfig c = JobConfig.load(f, Map.of("train.epochs", "5"));
        assertEquals(4, c.get(ConfigKeys.MODEL_EXPERTS));
        assertEquals(5, c.get(ConfigKeys.TRAIN_EPOCHS));
        assertTrue(c.describe().contains("model.experts = 4"));
        assertTrue(c.describe().contains("[from " + f + "]"));
    }

    @Test
    void fileErrorsNameTheLine() throws IOException {
        Path f = dir.resolve("bad.conf");
        Files.writeString(f, "model.experts = 4\nmodel.experts = 5\n");
        assertEquals(f + ":2: key model.experts is set twice",
                assertThrows(ConfigException.class, () -> JobConfig.load(f, Map.of())).getMessage());
        Files.writeString(f, "model.experts 4\n");
        assertEquals(f + ":1: expected 'key = value', got 'model.experts 4'",
                assertThrows(ConfigException.class, () -> JobConfig.load(f, Map.of())).getMessage());
        Files.writeString(f, "model.experts = 0\n");
        String m = assertThrows(ConfigException.class, () -> JobConfig.load(f, Map.of())).getMessage();
        assertTrue(m.endsWith("[set in " + f + "]"), m);
        assertTrue(assertThrows(ConfigException.class, () -> JobConfig.load(dir.resolve("none.conf"), Map.of()))
                .getMessage().startsWith("cannot read config file"));
    }
}
