package io.roundhouse.driver;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code roundhouse bench lm} on a tiny language model: attention against sgemm, the training
 * phases, and the PyTorch twin beside it where {@code /usr/bin/python3} has torch (else the report
 * says why it was left out); a classifier config is refused with one line.
 */
@Timeout(300)
class BenchLmTest {
    @TempDir
    Path tmp;

    private static int cli(StringWriter out, StringWriter err, String... args) {
        return RoundhouseCli.run(args, new PrintWriter(out, true), new PrintWriter(err, true));
    }

    @Test
    void measuresRoundhouseBesideItsTwin() throws Exception {
        StringBuilder text = new StringBuilder();
        for (int i = 0; text.length() < 20_000; i++) {
            text.append(i).append(" and the earth was without form, and void; and darkness was upon the deep.\n");
        }
        Path json = tmp.resolve("lm.json");
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = cli(out, err, "bench", "lm", "--workers", "1", "--steps", "20", "--seconds", "0.05", "--json",
                json.toString(), "model.kind=lm", "data.text=" + Files.writeString(tmp.resolve("t.txt"), text),
                "data.seqLen=16", "model.dim=16", "model.blocks=2", "model.heads=2", "model.experts=4", "model.topK=2",
                "model.expertHidden=16", "model.activation=swiglu", "model.norm=rmsnorm", "model.dropout.block=0",
                "train.batchSize=4", "train.evalBatchSize=64", "backend=cpu");
        assertEquals(0, code, err.toString());
        JsonNode r = new ObjectMapper().readTree(json.toFile());
        assertTrue(r.get("attention").get("fwdBwdGflopsPerSec").asDouble() > 0, r.toString());
        assertTrue(r.get("attention").get("ratioToSgemm1024").asDouble() > 0, r.toString());
        JsonNode run = r.get("roundhouse").get("runs").get(0);
        assertEquals(64, r.get("roundhouse").get("tokensPerStep").asInt(), "4 sequences of 16 tokens");
        for (String phase : new String[] {"attention", "route", "experts", "head", "optimizer"}) {
            assertTrue(run.get("phaseMs").get(phase).asDouble() > 0, phase + " is timed: " + run);
        }
        JsonNode torch = r.get("pytorch");
        if (torchInstalled()) {
            assertTrue(torch.get("tokensPerSecond").asDouble() > 0, torch.toString());
            assertTrue(torch.get("torch").asText().matches("\\d+\\.\\d+.*"), torch.toString());
            assertEquals(r.get("threads").asInt(), torch.get("threads").asInt(), "the twin gets Roundhouse's threads");
            assertTrue(r.get("roundhouseOverPytorch").asDouble() > 0);
            assertTrue(out.toString().contains("over PyTorch"), out.toString());
        } else {
            System.out.println("BenchLmTest: /usr/bin/python3 with torch is missing: checking the twin is reported skipped");
            assertTrue(torch.get("skipped").asText().contains("python3"), torch.toString());
        }
    }

    @Test
    void refusesAClassifierConfig() {
        StringWriter err = new StringWriter();
        assertEquals(2, cli(new StringWriter(), err, "bench", "lm", "--steps", "20"));
        assertEquals(1, err.toString().lines().count(), err.toString());
        assertTrue(err.toString().contains("bench lm measures the language model"), err.toString());
    }

    private static boolean torchInstalled() throws Exception {
        if (!Files.isExecutable(Path.of("/usr/bin/python3"))) {
            return false;
        }
        Process p = new ProcessBuilder("/usr/bin/python3", "-c", "import torch").redirectErrorStream(true).start();
        p.getInputStream().transferTo(java.io.OutputStream.nullOutputStream());
        return p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0;
    }
}
