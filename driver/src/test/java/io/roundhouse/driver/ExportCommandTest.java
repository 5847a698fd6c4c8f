package io.roundhouse.driver;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.roundhouse.worker.config.JobConfig;
import io.roundhouse.worker.train.Trainer;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code roundhouse export} on a language model's checkpoint: the files, and the one-line refusals
 * (of a folder that holds no checkpoint too).
 */
@Timeout(120)
class ExportCommandTest {
    @TempDir
    Path tmp;

    private int cli(StringWriter out, StringWriter err, String... args) {
        return RoundhouseCli.run(args, new PrintWriter(out, true), new PrintWriter(err, true));
    }

    @Test
    void exportsOnceThenRefusesTheSameFolder() throws Exception {
        StringBuilder text = new StringBuilder();
        for (int i = 0; text.length() < 4000; i++) {
            text.append(i).append(" the earth was without form and void.\n");
        }
        Map<String, String> m = new HashMap<>();
        m.put("model.kind", "lm");
        m.put("data.text", Files.writeString(tmp.resolve("text.txt"), text).toString());
        m.put("data.seqLen", "8");
        m.put("model.dim", "8");
        m.put("model.heads", "2");
        m.put("model.experts", "2");
        m.put("model.topK", "1");
        m.put("model.expertHidden", "4");
        m.put("model.activation", "swiglu");
        m.put("model.norm", "rmsnorm");
        m.put("train.maxSteps", "1");
        m.put("train.batchSize", "4");
        m.put("checkpoint.everySteps", "1");
        m.put("output.dir", tmp.resolve("run").toString());
        m.put("backend", "cpu");
        Trainer.Result r = new Trainer(JobConfig.of(m), new PrintStream(new ByteArrayOutputStream())).run();
        String ckpt = r.runDir().resolve("checkpoints").toString();
        Path out = tmp.resolve("export");
        StringWriter o = new StringWriter();
        StringWriter e = new StringWriter();
        assertEquals(0, cli(o, e, "export", "--checkpoint", ckpt, "--format", "safetensors", "--out", out.toString()),
                e.toString());
        assertTrue(Files.size(out.resolve("model.safetensors")) > 8 && Files.exists(out.resolve("config.json")));
        assertTrue(o.toString().startsWith("wrote "), o.toString());

        StringWriter e2 = new StringWriter();
        assertEquals(2, cli(new StringWriter(), e2, "export", "--checkpoint", ckpt, "--out", out.toString()));
        assertEquals(1, e2.toString().lines().count(), e2.toString());
        assertTrue(e2.toString().contains("already holds model.safetensors"), e2.toString());

        StringWriter e3 = new StringWriter();
        assertEquals(2, cli(new StringWriter(), e3, "export", "--checkpoint", ckpt, "--format", "onnx", "--out",
                tmp.resolve("x").toString()));
        assertTrue(e3.toString().contains("use --format safetensors"), e3.toString());
    }

    @Test
    void aFolderThatIsNotACheckpointGetsOneLine() throws Exception {
        Path junk = Files.createDirectories(tmp.resolve("junk"));
        Files.writeString(junk.resolve("notes.txt"), "not a checkpoint");
        Path foreign = Files.createDirectories(tmp.resolve("foreign"));
        Files.writeString(foreign.resolve("manifest.json"), "{\"version\": 3}");
        for (Path p : new Path[] {junk, foreign}) {
            StringWriter e = new StringWriter();
            assertEquals(2, cli(new StringWriter(), e, "export", "--checkpoint", p.toString(), "--out",
                    tmp.resolve("out").toString()));
            assertEquals(1, e.toString().lines().count(), e.toString());
            assertTrue(e.toString().startsWith("error: ") && e.toString().contains(p.toString())
                    && e.toString().contains("step-NNNNNNNN"), e.toString());
            assertTrue(Files.notExists(tmp.resolve("out")), "nothing written");
        }
    }
}
