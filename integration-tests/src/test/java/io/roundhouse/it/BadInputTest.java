package io.roundhouse.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.roundhouse.driver.RoundhouseCli;
import io.roundhouse.worker.IdxFixtures;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import java.util.zip.CRC32;
import java.util.zip.GZIPOutputStream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Bad input of every kind (config, IDX and text data, checkpoints, the command line), a case
 * each: the command exits with 2 and one error line (two at most) that names the problem and the
 * fix, no stack trace, and nothing anywhere under the test's folder is written, changed or
 * removed: no data file, no checkpoint, no earlier run's output, no new run folder.
 * {@link UserErrorsTest} holds the environment's faults (full file systems, the Spark job).
 */
@Timeout(600)
class BadInputTest {
    private static final Path CLASSIFIER = Path.of("..", "conf", "fashion-mnist-moe.conf");
    private static final Path LM = Path.of("..", "conf", "kjv-moe-lm.conf");

    @TempDir
    Path tmp;

    private Path data;
    private Path runs;
    private Path checkpoints;   // a complete run's checkpoints: step-00000005 and step-00000010

    private record Case(String name, String[] args, String says) {
    }

    /** The small classifier every case starts from; {@code more}: options, or key=value replacing the defaults. */
    private String[] classifier(String command, String... more) {
        return Cli.job(CLASSIFIER, List.of("data.dir=" + data, "output.dir=" + runs, "data.validationExamples=100",
                "model.dim=16", "model.experts=4", "model.expertHidden=16", "train.batchSize=40",
                "train.warmupSteps=2", "train.maxSteps=10", "train.evalBatchSize=50", "log.everySteps=5",
                "backend=cpu", "comms.timeoutMs=20000"), command, more);
    }

    /** A small language model on the text {@code text}. */
    private String[] lm(Path text, String... more) {
        return Cli.job(LM, List.of("data.text=" + text, "output.dir=" + runs, "model.dim=16", "model.blocks=1",
                "model.heads=2", "model.experts=4", "model.expertHidden=16", "data.seqLen=16", "train.batchSize=4",
                "train.maxSteps=4", "train.warmupSteps=1", "train.evalBatchSize=4", "backend=cpu"), "train", more);
    }

    @TestFactory
    Stream<DynamicTest> everyBadInputIsNamedAndWritesNothing() throws IOException {
        data = IdxFixtures.write(tmp.resolve("data"), 400, 100, 3);
        runs = tmp.resolve("runs");
        Cli.Outcome first = Cli.run(classifier("train", "checkpoint.everySteps=5", "checkpoint.keep=0"));
        assertEquals(0, first.code(), first.err());
        Path earlierRun;
        try (Stream<Path> s = Files.list(runs)) {
            earlierRun = s.findFirst().orElseThrow();
        }
        checkpoints = earlierRun.resolve("checkpoints");
        Path file = Files.writeString(tmp.resolve("a-file"), "x");

        List<Case> cases = new ArrayList<>();
        config(cases, file);
        idx(cases);
        text(cases);
        checkpoint(cases);
        commandLine(cases, earlierRun);
        assertTrue(cases.size() >= 40, cases.size() + " cases");
        return cases.stream().map(c -> DynamicTest.dynamicTest(c.name(), () -> {
            Map<String, String> before = snapshot(tmp);
            Cli.Outcome o = Cli.run(c.args());
            String what = c.name() + " (" + String.join(" ", c.args()) + ")";
            assertEquals(RoundhouseCli.EXIT_USAGE, o.code(), what + ": " + o.err());
            assertTrue(o.err().startsWith("error: "), what + ": " + o.err());
            assertTrue(o.err().contains(c.says()), what + ": expected '" + c.says() + "' in " + o.err());
            assertTrue(o.err().strip().lines().count() <= 2, what + ": one or two lines: " + o.err());
            assertFalse(o.err().contains("\tat ") || o.err().contains("Exception"), what + ": no trace: " + o.err());
            assertEquals(before, snapshot(tmp), what + ": nothing written, changed or removed");
        }));
    }

    private void config(List<Case> cases, Path file) throws IOException {
        Path badSyntax = Files.writeString(tmp.resolve("bad.conf"), "model.experts = 4\nthis is not a setting\n");
        Path duplicate = Files.writeString(tmp.resolve("twice.conf"), "model.experts = 4\nmodel.experts = 8\n");
        Path emptyConf = Files.writeString(tmp.resolve("empty.conf"), "");
        add(cases, "config: unknown key", classifier("train", "model.expert=4"), "unknown key 'model.expert'");
        add(cases, "config: not an integer", classifier("train", "model.dim=abc"), "model.dim = 'abc': not an integer");
        add(cases, "config: not a number", classifier("train", "train.lr=fast"), "train.lr = 'fast'");
        add(cases, "config: empty value", classifier("train", "model.dim="), "model.dim = ''");
        add(cases, "config: below its range", classifier("train", "train.batchSize=0"), "train.batchSize = '0'");
        add(cases, "config: negative rate", classifier("train", "train.lr=-1"), "train.lr = '-1'");
        add(cases, "config: no experts", classifier("train", "model.experts=0"), "model.experts = '0'");
        add(cases, "config: unknown choice", classifier("train", "comms.transport=tcp"), "comms.transport = 'tcp'");
        add(cases, "config: top-k above the experts", classifier("train", "model.topK=5"),
                "model.topK = 5 is larger than model.experts = 4");
        add(cases, "config: term length", classifier("train", "comms.termLengthBytes=100000"), "is not a power of two");
        add(cases, "config: trace steps", classifier("train", "train.traceSteps=5-3"), "'5-3' is not a step");
        add(cases, "config: STN without validation", classifier("train", "stn.tune=dropout.block",
                "data.validationExamples=0"), "stn.tune needs a validation split");
        add(cases, "config: batch smaller than the workers", classifier("train", "workers=4", "train.batchSize=3"),
                "gives some of the 4 workers no examples");
        add(cases, "config: a key the model kind ignores", classifier("train", "data.seqLen=64"),
                "but model.kind=classifier ignores it");
        add(cases, "config: a patch key on the classifier", classifier("train", "model.patchSize=7"),
                "only the NiNformer cuts images into patches");
        add(cases, "config: a patch that does not divide the image", classifier("train", "model.kind=ninformer",
                "model.patchSize=5"), "model.patchSize = 5 does not divide the image side 28; choose one of 1, 2, 4, 7");
        add(cases, "config: an attack key without adversarial training", classifier("train", "adv.epsilon=0.2"),
                "adv.epsilon = 0.2, but adv.training = off does not read it");
        add(cases, "config: adversarial training with a Self-Tuning Network", classifier("train",
                "adv.training=advmoe", "stn.tune=dropout.block"), "with a Self-Tuning Network is not built");
        add(cases, "config: fault injection outside Spark", classifier("train", "fault.failAtStep=3"),
                "fault.failAtStep = 3 is fault injection for the Spark job");
        add(cases, "config: Parquet outside Spark", classifier("train", "data.format=parquet"),
                "data.format = parquet is read by the Spark job");
        add(cases, "config file: missing", new String[] {"train", "-c", tmp.resolve("none.conf").toString()},
                "cannot read config file");
        add(cases, "config file: bad syntax", new String[] {"train", "-c", badSyntax.toString()}, "bad.conf:2: expected");
        add(cases, "config file: a key twice", new String[] {"train", "-c", duplicate.toString()}, "twice.conf:2");
        add(cases, "config file: a folder", new String[] {"train", "-c", tmp.toString()}, "cannot read config file");
        add(cases, "config: output folder is a file", classifier("train", "output.dir=" + file.resolve("x")),
                "is a file, not a folder; set output.dir");
        add(cases, "config: checkpoint folder is a file", classifier("train", "checkpoint.dir=" + file),
                "is a file, not a folder; set checkpoint.dir");
        add(cases, "config: Aeron folder under a file", classifier("train", "comms.aeronDir=" + file.resolve("x"),
                "workers=2"), "set comms.aeronDir");
        assertTrue(Files.exists(emptyConf));
    }

    private void idx(List<Case> cases) throws IOException {
        add(cases, "IDX: no such folder", classifier("train", "data.dir=" + tmp.resolve("none")), "is not a folder");
        add(cases, "IDX: a file missing", classifier("train", "data.dir=" + dataWith("missing", "train-labels", null)),
                "train-labels-idx1-ubyte");
        add(cases, "IDX: truncated", classifier("train", "data.dir=" + dataWith("truncated", "train-images",
                d -> java.util.Arrays.copyOf(d, d.length / 2))), "train-images-idx3-ubyte.gz");
        add(cases, "IDX: empty file", classifier("train", "data.dir=" + dataWith("empty", "train-labels",
                d -> new byte[0])), "train-labels-idx1-ubyte.gz");
        add(cases, "IDX: not gzip", classifier("train", "data.dir=" + dataWith("plain", "t10k-labels",
                d -> "not gzip at all".getBytes(StandardCharsets.US_ASCII))), "t10k-labels-idx1-ubyte.gz");
        add(cases, "IDX: wrong magic", classifier("train", "data.dir=" + idxWith("magic", "train-labels",
                header(0x00000A01, 400), new byte[400])), "train-labels-idx1-ubyte.gz");
        add(cases, "IDX: labels out of range", classifier("train", "data.dir=" + idxWith("label", "train-labels",
                header(0x00000801, 400), labels(400, 12))), "label 12");
        add(cases, "IDX: images and labels disagree", classifier("train", "data.dir=" + idxWith("count",
                "train-labels", header(0x00000801, 399), labels(399, 1))), "399");
        add(cases, "IDX: wrong image shape", classifier("train", "data.dir=" + idxWith("shape", "t10k-images",
                header(0x00000803, 100, 27, 28), new byte[100 * 27 * 28])), "27");
        Path folderInstead = dataWith("folder", "train-images", null);
        Files.createDirectories(folderInstead.resolve("train-images-idx3-ubyte.gz"));
        add(cases, "IDX: a folder where a file should be", classifier("train", "data.dir=" + folderInstead),
                "train-images-idx3-ubyte.gz is a folder, not a file");
    }

    private void text(List<Case> cases) throws IOException {
        Path empty = Files.writeString(tmp.resolve("empty.txt"), "");
        Path tiny = Files.writeString(tmp.resolve("tiny.txt"), "In the beginning");
        Path emptyFolder = Files.createDirectories(tmp.resolve("no-text"));
        add(cases, "text: no such file", lm(tmp.resolve("none.txt")), "none.txt");
        add(cases, "text: empty", lm(empty), "empty.txt");
        add(cases, "text: shorter than a sequence", lm(tiny), "tiny.txt");
        add(cases, "text: an empty folder", lm(emptyFolder), "no-text");
        add(cases, "text: a key the model kind ignores", lm(tiny, "augment.shift=2"), "but model.kind=lm ignores it");
    }

    private void checkpoint(List<Case> cases) throws IOException {
        Path step10 = checkpoints.resolve("step-00000010");
        add(cases, "checkpoint: none there", classifier("train", "--resume", tmp.resolve("none").toString()),
                "no complete checkpoint there");
        add(cases, "checkpoint: another model", classifier("train", "--resume", checkpoints.toString(),
                "model.experts=8"), "was written by another model: model.experts = 8 here, 4 in the checkpoint");
        add(cases, "checkpoint: another model, two workers", classifier("train", "--resume", checkpoints.toString(),
                "model.experts=8", "workers=2"), "was written by another model");
        add(cases, "checkpoint: one bit flipped", classifier("train", "--resume", damaged("flipped", "shard-0.bin",
                b -> {
                    b[b.length / 2] ^= 0x10;
                    return b;
                }).toString()), "is corrupt (its checksum does not match");
        add(cases, "checkpoint: corrupt, two workers", classifier("train", "workers=2", "--resume",
                damaged("flipped-2", "shard-0.bin", b -> {
                    b[40] ^= 0x01;
                    return b;
                }).toString()), "is corrupt");
        add(cases, "checkpoint: truncated shard", classifier("train", "--resume", damaged("cut", "shard-0.bin",
                b -> java.util.Arrays.copyOf(b, b.length - 100)).toString()), "shard-0.bin is corrupt");
        add(cases, "checkpoint: shard cut to nothing", classifier("train", "--resume", damaged("nothing",
                "shard-0.bin", b -> new byte[3]).toString()), "is cut short (3 bytes)");
        add(cases, "checkpoint: missing shard", classifier("train", "--resume", damaged("no-shard", "shard-0.bin",
                null).toString()), "is missing, though the manifest lists it");
        add(cases, "checkpoint: missing manifest", classifier("train", "--resume", damaged("no-manifest",
                "manifest.json", null).toString()), "has no manifest.json");
        add(cases, "checkpoint: manifest not JSON", classifier("train", "--resume", damaged("garbled",
                "manifest.json", b -> "{\"format\": 1, \"step\"".getBytes(StandardCharsets.UTF_8)).toString()),
                "is not valid JSON");
        add(cases, "checkpoint: another format version", classifier("train", "--resume", damaged("format",
                "manifest.json", b -> new String(b, StandardCharsets.UTF_8).replace("\"format\" : 1", "\"format\" : 2")
                        .getBytes(StandardCharsets.UTF_8)).toString()), "format 2");
        add(cases, "checkpoint: a shard of another step", classifier("train", "--resume", damaged("other-step",
                "shard-0.bin", b -> read(checkpoints.resolve("step-00000005").resolve("shard-0.bin"))).toString()),
                "belongs to step 5");
        add(cases, "checkpoint: another model kind", lm(tmp.resolve("tiny.txt"), "--resume", step10.toString()),
                "was written by another model");
    }

    private void commandLine(List<Case> cases, Path earlierRun) {
        add(cases, "CLI: unknown option", new String[] {"train", "--bogus"}, "Unknown option: '--bogus'");
        add(cases, "CLI: not KEY=VALUE", classifier("train", "model.dim"), "is not KEY=VALUE");
        add(cases, "CLI: unknown command", new String[] {"tarin"}, "unknown command 'tarin'; the commands are train,");
        add(cases, "CLI: --resume twice over", classifier("train", "--resume", checkpoints.toString(),
                "train.resume=" + checkpoints), "--resume and train.resume are both given");
        add(cases, "CLI: unknown benchmark", new String[] {"bench", "allgather"}, "unknown benchmark 'allgather'");
        add(cases, "CLI: a flag the benchmark does not read", new String[] {"bench", "kernels", "--workers", "1,2"},
                "--workers is not read by bench kernels");
        add(cases, "CLI: benchmark seconds out of range", new String[] {"bench", "alltoall", "--seconds", "0"},
                "--seconds 0.0 must be in (0, 600]");
        add(cases, "CLI: a bad benchmark value", new String[] {"bench", "alltoall", "--mtu-udp", "100"},
                "mtuBytes 100 must be a multiple of 32");
        add(cases, "CLI: export without a checkpoint", new String[] {"export", "--checkpoint",
                tmp.resolve("none").toString(), "--out", tmp.resolve("export").toString()}, "none");
        add(cases, "CLI: export over an earlier run's file", new String[] {"export", "--checkpoint",
                checkpoints.toString(), "--out", earlierRun.resolve("summary.json").toString()}, "summary.json");
        add(cases, "CLI: report of a folder that is no run", new String[] {"report", tmp.resolve("data").toString()},
                "metrics.jsonl");
        add(cases, "CLI: eval without a checkpoint", new String[] {"eval", "--checkpoint",
                tmp.resolve("none").toString()}, "none");
        add(cases, "CLI: eval with epsilon out of range", new String[] {"eval", "--checkpoint", checkpoints.toString(),
                "--epsilon", "2"}, "--epsilon must be in [0, 1]");
        add(cases, "CLI: early exits on a classifier", new String[] {"early-exit", "--checkpoint", checkpoints.toString(),
                "data.dir=" + data}, "early exits are built for the NiNformer");
        add(cases, "CLI: early exits with a model key", new String[] {"early-exit", "--checkpoint",
                checkpoints.toString(), "model.dim=32"}, "model.dim = 32, but roundhouse early-exit does not read it");
        add(cases, "config: an exit key in training", classifier("train", "exit.lambda=0.5"),
                "exit.lambda = 0.5 is read by 'roundhouse early-exit");
        add(cases, "CLI: generate from a classifier", new String[] {"generate", "--checkpoint",
                checkpoints.toString()}, "classifier");
    }

    private static void add(List<Case> cases, String name, String[] args, String says) {
        cases.add(new Case(name, args, says));
    }

    /** A copy of the fixture data with file {@code prefix*} changed by {@code change} (null: removed). */
    private Path dataWith(String name, String prefix, java.util.function.UnaryOperator<byte[]> change)
            throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("data-" + name));
        try (Stream<Path> s = Files.list(data)) {
            for (Path p : s.toList()) {
                byte[] b = Files.readAllBytes(p);
                if (!p.getFileName().toString().startsWith(prefix)) {
                    Files.write(dir.resolve(p.getFileName()), b);
                } else if (change != null) {
                    Files.write(dir.resolve(p.getFileName()), change.apply(b));
                }
            }
        }
        return dir;
    }

    /** A copy of the fixture data with IDX file {@code prefix*} replaced by {@code header} + {@code body}, gzipped. */
    private Path idxWith(String name, String prefix, byte[] header, byte[] body) throws IOException {
        Path dir = dataWith(name, prefix, null);
        String file = prefix + (prefix.endsWith("images") ? "-idx3-ubyte.gz" : "-idx1-ubyte.gz");
        try (OutputStream out = new GZIPOutputStream(Files.newOutputStream(dir.resolve(file)))) {
            out.write(header);
            out.write(body);
        }
        return dir;
    }

    private static byte[] header(int magic, int... dims) {
        ByteBuffer b = ByteBuffer.allocate(4 + 4 * dims.length).putInt(magic);
        for (int d : dims) {
            b.putInt(d);
        }
        return b.array();
    }

    private static byte[] labels(int n, int last) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) {
            b[i] = (byte) (i % 10);
        }
        b[n - 1] = (byte) last;
        return b;
    }

    /** A copy of the run's checkpoints whose step-10 {@code file} is changed by {@code change} (null: removed). */
    private Path damaged(String name, String file, java.util.function.UnaryOperator<byte[]> change)
            throws IOException {
        Path copy = tmp.resolve("checkpoints-" + name);
        try (Stream<Path> s = Files.walk(checkpoints)) {
            for (Path p : s.toList()) {
                Files.copy(p, copy.resolve(checkpoints.relativize(p).toString()));
            }
        }
        Path target = copy.resolve("step-00000010").resolve(file);
        if (change == null) {
            Files.delete(target);
        } else {
            Files.write(target, change.apply(Files.readAllBytes(target)));
        }
        return copy.resolve("step-00000010");
    }

    private static byte[] read(Path p) {
        try {
            return Files.readAllBytes(p);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /** Every file and folder under {@code root}: its size, CRC-32 and modification time. */
    private static Map<String, String> snapshot(Path root) throws IOException {
        Map<String, String> out = new TreeMap<>();
        try (Stream<Path> s = Files.walk(root)) {
            for (Path p : s.toList()) {
                String rel = root.relativize(p).toString();
                if (Files.isDirectory(p)) {
                    out.put(rel + "/", "folder");
                } else {
                    CRC32 crc = new CRC32();
                    crc.update(Files.readAllBytes(p));
                    out.put(rel, Files.size(p) + " bytes, crc " + crc.getValue() + ", modified "
                            + Files.getLastModifiedTime(p).toMillis());
                }
            }
        }
        return out;
    }
}
