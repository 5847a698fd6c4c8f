package io.roundhouse.worker;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.roundhouse.kernels.cpu.CpuBackend;
import io.roundhouse.worker.checkpoint.CheckpointStore;
import io.roundhouse.worker.config.JobConfig;
import io.roundhouse.worker.export.ModelExport;
import io.roundhouse.worker.train.Trainer;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a run leaves: its export in {@code <runDir>/export} (from the model with one worker, from
 * the checkpoint of the final step with two), the line naming it, and a line saying why there is
 * none instead of a failed run; and {@code export} refusing, in one line, a folder that holds no
 * checkpoint.
 */
@Timeout(120)
class RunExportTest {
    @TempDir
    Path tmp;

    private static String console(ByteArrayOutputStream b) {
        return b.toString(StandardCharsets.UTF_8);
    }

    @Test
    void oneWorkerLeavesItsExportAndSaysWhere() throws Exception {
        Map<String, String> m = ClassifierFixtures.config(tmp.resolve("images"), tmp.resolve("runs"));
        m.put("checkpoint.everySteps", "0");  // from the model itself: no checkpoint needed
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        Trainer.Result r = new Trainer(JobConfig.of(m), new PrintStream(out, true)).run();
        Path export = r.runDir().resolve("export");
        assertTrue(Files.size(export.resolve(ModelExport.WEIGHTS)) > 8 && Files.exists(export.resolve(ModelExport.CONFIG)));
        List<String> lines = console(out).lines().toList();
        assertEquals("export: " + export.resolve(ModelExport.WEIGHTS) + " and config.json (PyTorch reads them; see "
                + "docs/architecture.md)", lines.get(lines.size() - 1), console(out));
    }

    @Test
    void twoWorkersExportTheirFinalCheckpointOrSayTheyHaveNone() throws Exception {
        Map<String, String> m = ClassifierFixtures.config(tmp.resolve("images"), tmp.resolve("runs"));
        Trainer.Result r = TrainerGroups.train(m, 2, tmp.resolve("aeron"), "export2").get(0);
        Path export = r.runDir().resolve("export");
        Path again = tmp.resolve("again");
        ModelExport.run(new CpuBackend(), r.runDir().resolve("checkpoints").resolve("step-00000002").toString(),
                CheckpointStore::local, again);
        LmExportTest.Read run = LmExportTest.read(export.resolve(ModelExport.WEIGHTS));
        LmExportTest.Read checkpoint = LmExportTest.read(again.resolve(ModelExport.WEIGHTS));
        assertEquals(checkpoint.shapes().keySet(), run.shapes().keySet());
        for (String name : run.values().keySet()) {
            assertArrayEquals(checkpoint.values().get(name), run.values().get(name), name);
        }

        m.put("checkpoint.everySteps", "0");
        m.put("output.dir", tmp.resolve("runs-none").toString());
        Trainer.Result none = TrainerGroups.train(m, 2, tmp.resolve("aeron"), "export2none").get(0);
        assertFalse(Files.exists(none.runDir().resolve("export")), "no checkpoint, no export");
        assertTrue(Files.exists(none.runDir().resolve("summary.json")), "the run finished");
    }

    @Test
    void aLayerNormGeluLanguageModelLeavesItsExportToo() throws Exception {
        Map<String, String> m = LmFixtures.config(LmFixtures.corpus(tmp.resolve("text.txt"), 5, 3_000, 8),
                tmp.resolve("lm"), 1);
        m.put("model.norm", "layernorm");
        m.put("model.activation", "gelu");
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        Trainer.Result r = new Trainer(JobConfig.of(m), new PrintStream(out, true)).run();
        assertTrue(Files.exists(r.runDir().resolve("export").resolve("model.safetensors")), console(out));
        JsonNode config = new ObjectMapper().readTree(r.runDir().resolve("export").resolve("config.json").toFile());
        assertEquals("layernorm", config.get("norm_type").asText());
        assertEquals("gelu_pytorch_tanh", config.get("hidden_act").asText());
        assertFalse(config.get("expert_glu").asBoolean());
    }

    @Test
    void aClassifierCheckpointThatDoesNotRecordItsTopKIsRefusedInOneLine() throws Exception {
        Map<String, String> m = ClassifierFixtures.config(tmp.resolve("images"), tmp.resolve("runs"));
        Trainer.Result r = TrainerGroups.train(m, 1, tmp.resolve("aeron"), "old").get(0);
        Path manifest = r.runDir().resolve("checkpoints").resolve("step-00000002").resolve("manifest.json");
        com.fasterxml.jackson.databind.node.ObjectNode json = (com.fasterxml.jackson.databind.node.ObjectNode)
                new com.fasterxml.jackson.databind.ObjectMapper().readTree(manifest.toFile());
        assertEquals("2", json.path("settings").path("model.topK").asText(), "recorded now");
        ((com.fasterxml.jackson.databind.node.ObjectNode) json.path("settings")).remove("model.topK");
        Files.writeString(manifest, json.toString());  // as a checkpoint of an earlier version
        Path out = tmp.resolve("old-export");
        UserException e = assertThrows(UserException.class, () -> ModelExport.run(new CpuBackend(),
                manifest.getParent().toString(), CheckpointStore::local, out));
        assertTrue(e.getMessage().contains("does not record model.topK") && e.getMessage().contains("train.resume")
                && !e.getMessage().contains("\n"), e.getMessage());
        assertFalse(Files.exists(out), "nothing written");
    }

    @Test
    void aFolderThatHoldsNoCheckpointIsRefusedInOneLine() throws Exception {
        Path empty = Files.createDirectories(tmp.resolve("empty"));
        Path junk = Files.createDirectories(tmp.resolve("junk"));
        Files.writeString(junk.resolve("notes.txt"), "hello");
        Files.write(junk.resolve("data.bin"), new byte[] {1, 2, 3});
        Files.createDirectories(junk.resolve("step-x"));
        Path foreign = Files.createDirectories(tmp.resolve("foreign"));
        Files.writeString(foreign.resolve("manifest.json"), "{\"name\": \"someone else's\", \"version\": 3}");
        Path notJson = Files.createDirectories(tmp.resolve("not-json"));
        Files.writeString(notJson.resolve("manifest.json"), "manifest-version: 1.0\n");
        Path file = Files.writeString(tmp.resolve("a-file.txt"), "x");
        Path missing = tmp.resolve("missing");
        for (Path p : List.of(empty, junk, foreign, notJson, file, missing)) {
            Path out = tmp.resolve("out-" + p.getFileName());
            UserException e = assertThrows(UserException.class, () -> ModelExport.run(new CpuBackend(), p.toString(),
                    CheckpointStore::local, out), p.toString());
            String msg = e.getMessage();
            System.out.println(p.getFileName() + ": " + msg);
            assertEquals(UserException.USAGE, e.exitCode(), msg);
            assertFalse(msg.contains("\n"), "one line: " + msg);
            assertTrue(msg.contains(p.toString()), "names the folder: " + msg);
            assertTrue(msg.contains("step-NNNNNNNN") || msg.contains("check the path"), "says what to do: " + msg);
            assertFalse(Files.exists(out), "nothing written");
        }
    }
}
