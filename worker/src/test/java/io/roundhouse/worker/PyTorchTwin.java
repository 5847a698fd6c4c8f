package io.roundhouse.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;

/**
 * What the parity tests share about a PyTorch twin under {@code scripts/}: skipping with the reason
 * where {@code /usr/bin/python3} or its torch is missing, running it, reading the logits it writes
 * and holding them to Roundhouse's.
 */
final class PyTorchTwin {
    static final String PYTHON = "/usr/bin/python3";

    private final Path script;

    private PyTorchTwin(Path script) {
        this.script = script;
    }

    /** The twin {@code scripts/<name>}; the calling test is skipped, saying why, without Python's torch. */
    static PyTorchTwin orSkip(String name) throws IOException, InterruptedException {
        Assumptions.assumeTrue(Files.isExecutable(Path.of(PYTHON)), PYTHON + " is missing: the PyTorch twin cannot run");
        Process p = new ProcessBuilder(PYTHON, "-c", "import torch").redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        Assumptions.assumeTrue(p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0,
                PYTHON + " has no torch module (install python3-torch): " + out.strip());
        return new PyTorchTwin(repoRoot().resolve("scripts").resolve(name));
    }

    /** Runs the twin with {@code args}; its last output line, JSON. */
    JsonNode run(String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(PYTHON, script.toString()));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "the twin did not finish: " + out);
        assertEquals(0, p.exitValue(), "the twin failed:\n" + out);
        String[] lines = out.strip().split("\n");
        return new ObjectMapper().readTree(lines[lines.length - 1]);
    }

    /** The smallest router margin the twin reports (none when top-k keeps every expert: infinite). */
    static double margin(JsonNode report) {
        JsonNode reported = report.path("min_router_margin");
        return reported.isNumber() ? reported.asDouble() : Double.POSITIVE_INFINITY;
    }

    /** {@code count} little-endian floats from {@code file}, which must hold exactly them. */
    static float[] readFloats(Path file, int count) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        assertEquals(4L * count, bytes.length, "the twin's logits file size");
        float[] f = new float[count];
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(f);
        return f;
    }

    /** The twin's logits equal Roundhouse's to 1e-4 of the largest, which must say something (> 0.1). */
    static void assertMatch(String tag, long seed, double margin, float[] java, float[] twin) {
        double maxAbs = 0;
        double maxDiff = 0;
        for (int i = 0; i < java.length; i++) {
            maxAbs = Math.max(maxAbs, Math.abs(java[i]));
            maxDiff = Math.max(maxDiff, Math.abs(java[i] - twin[i]));
        }
        System.out.printf(Locale.ROOT, "twin %s: batch seed %d, min router margin %.3g, max |Δlogit| %.3g, "
                + "max |logit| %.3g, ratio %.3g%n", tag, seed, margin, maxDiff, maxAbs, maxDiff / maxAbs);
        assertTrue(maxAbs > 0.1, "logits that say something: max |logit| " + maxAbs);
        assertTrue(maxDiff <= 1e-4 * maxAbs, tag + ": max |Δlogit| " + maxDiff + " > 1e-4 × max |logit| " + maxAbs);
    }

    /**
     * Gaussian batches of {@code n} rows of {@code inputs} features, drawn by seed 1, 2, … until the
     * twin reports every router margin at least {@code minMargin} (a near-tie between the k-th and
     * (k+1)-th router logit could send a row to another expert under a rounding difference); on that
     * batch the twin's logits of the export in {@code export} must match {@code javaLogits}' ({@link #assertMatch}).
     *
     * @param files where the batch's inputs and the twin's logits are written
     */
    void assertMatchesOnABatch(String tag, Path export, Path files, int n, int inputs, int classes, double minMargin,
                               java.util.function.Function<float[], float[]> javaLogits)
            throws IOException, InterruptedException {
        for (long seed = 1; seed <= 20; seed++) {
            float[] x = new float[n * inputs];
            java.util.SplittableRandom rnd = new java.util.SplittableRandom(seed);
            for (int i = 0; i < x.length; i++) {
                x[i] = (float) rnd.nextGaussian();
            }
            String name = tag.replace(' ', '-');
            Path inputsFile = files.resolve(name + "-inputs-" + seed + ".f32");
            ByteBuffer b = ByteBuffer.allocate(4 * x.length).order(ByteOrder.LITTLE_ENDIAN);
            b.asFloatBuffer().put(x);
            Files.write(inputsFile, b.array());
            Path logitsFile = files.resolve(name + "-logits-" + seed + ".f32");
            JsonNode report = run("--model", export.toString(), "--inputs", inputsFile.toString(),
                    "--logits-out", logitsFile.toString());
            double margin = margin(report);
            if (margin < minMargin) {
                continue;
            }
            assertMatch(tag, seed, margin, javaLogits.apply(x), readFloats(logitsFile, n * classes));
            return;
        }
        throw new AssertionError(tag + ": no batch seed in 1..20 keeps every router margin ≥ " + minMargin);
    }

    /** The repository root: the worker module's parent (tests run in the module folder). */
    static Path repoRoot() {
        Path here = Path.of("").toAbsolutePath();
        return Files.exists(here.resolve("scripts")) ? here : here.getParent();
    }
}
