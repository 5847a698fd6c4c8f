package io.roundhouse.worker.exit;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.roundhouse.kernels.Backend;
import io.roundhouse.worker.checkpoint.CheckpointException;
import io.roundhouse.worker.checkpoint.CheckpointStore;
import io.roundhouse.worker.config.ConfigException;
import io.roundhouse.worker.config.ConfigKey;
import io.roundhouse.worker.config.ConfigKeys;
import io.roundhouse.worker.config.JobConfig;
import io.roundhouse.worker.data.Batcher;
import io.roundhouse.worker.data.DataSplits;
import io.roundhouse.worker.data.FashionMnist;
import io.roundhouse.worker.data.LabeledData;
import io.roundhouse.worker.model.Ninformer;
import io.roundhouse.worker.report.RunReport;
import io.roundhouse.worker.train.ModelCheckpoint;
import io.roundhouse.worker.train.ModelKind;
import io.roundhouse.worker.train.RunFiles;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.function.Function;

/**
 * {@code roundhouse early-exit}: JEI-DNN exits on a NiNformer checkpoint, a sweep of λ, and a run
 * folder ({@code output.dir/run-…}) with {@code config.conf}, {@code metrics.jsonl} (an
 * {@code earlyExitReference} record, then one {@code earlyExit} record per λ), {@code summary.json}
 * and {@code report.html}, whose accuracy-against-compute chart is the curve.
 */
public final class EarlyExitRun {
    /** The keys it reads; any other set to other than its default is refused (accepted and ignored otherwise). */
    private static final Set<String> READS = Set.of(ConfigKeys.DATA_DIR.name(), ConfigKeys.OUTPUT_DIR.name(),
            ConfigKeys.TRAIN_SEED.name(), ConfigKeys.EXIT_LAMBDA.name(), ConfigKeys.EXIT_BLOCKS.name(),
            ConfigKeys.EXIT_EPOCHS.name(), ConfigKeys.EXIT_ALTERNATE_STEPS.name(), ConfigKeys.EXIT_LR.name(),
            ConfigKeys.TRAIN_BATCH_SIZE.name(), ConfigKeys.DATA_VALIDATION_EXAMPLES.name());

    /** The exit keys, which only this command reads (a training run refuses them). */
    public static final List<ConfigKey<?>> EXIT_KEYS = List.of(ConfigKeys.EXIT_LAMBDA, ConfigKeys.EXIT_BLOCKS,
            ConfigKeys.EXIT_EPOCHS, ConfigKeys.EXIT_ALTERNATE_STEPS, ConfigKeys.EXIT_LR);

    private EarlyExitRun() {
    }

    /** Refuses a key the command does not read set to other than its default. */
    public static void check(JobConfig config) {
        for (ConfigKey<?> k : ConfigKeys.ALL) {
            if (!READS.contains(k.name()) && !Objects.equals(config.get(k), k.parse(k.defaultText()))) {
                throw new ConfigException(k.name() + " = " + config.asMap().get(k.name()) + ", but roundhouse early-exit "
                        + "does not read it (the model comes from --checkpoint, with the settings it was trained with); "
                        + "remove it");
            }
        }
    }

    /** A training run refuses the exit keys: only {@code roundhouse early-exit} reads them. */
    public static void refuseInTraining(JobConfig config) {
        for (ConfigKey<?> k : EXIT_KEYS) {
            if (!Objects.equals(config.get(k), k.parse(k.defaultText()))) {
                throw new ConfigException(k.name() + " = " + config.asMap().get(k.name()) + " is read by 'roundhouse "
                        + "early-exit --checkpoint …' (exits on a trained NiNformer), not by a training run; remove it");
            }
        }
    }

    /**
     * Runs the sweep on the checkpoint's NiNformer and writes the run folder.
     *
     * @return the run folder
     */
    public static Path run(JobConfig config, Backend be, String checkpoint, Function<String, CheckpointStore> stores,
                           PrintStream console) {
        check(config);
        Path dataDir = Path.of(config.get(ConfigKeys.DATA_DIR));
        FashionMnist.checkFolder(dataDir);
        ModelCheckpoint ckpt = ModelCheckpoint.open(checkpoint, stores);
        if (ckpt.kind() != ModelKind.NINFORMER) {
            throw new CheckpointException("checkpoint " + ckpt.describe() + " was written by model.kind="
                    + ckpt.kind().configName() + "; early exits are built for the NiNformer (model.kind=ninformer, "
                    + "e.g. a run of conf/fashion-ninformer.conf)");
        }
        int batch = config.get(ConfigKeys.TRAIN_BATCH_SIZE);
        Ninformer model = (Ninformer) ckpt.imageModel(be, 256, "early exits are built for the NiNformer");
        int blocks = model.spec().blocks();
        List<Integer> given = config.get(ConfigKeys.EXIT_BLOCKS);
        int[] exitBlocks = given.isEmpty() ? java.util.stream.IntStream.range(0, blocks - 1).toArray()
                : given.stream().mapToInt(Integer::intValue).sorted().toArray();
        if (exitBlocks.length == 0 || exitBlocks[exitBlocks.length - 1] >= blocks - 1) {
            throw new ConfigException("exit.blocks = " + given + ": the exits sit after blocks 0.." + (blocks - 2)
                    + " of this " + blocks + "-block model (block " + (blocks - 1) + "'s exit is its own head); "
                    + (blocks < 2 ? "a one-block model has no intermediate exit" : "choose among them, or leave it empty"));
        }
        DataSplits data = FashionMnist.load(dataDir);
        Path runDir = RunFiles.createRunDir(Path.of(config.get(ConfigKeys.OUTPUT_DIR)));
        console.println("run directory: " + runDir);
        console.println("model: " + model.describe() + " (" + ckpt.describe() + ")");
        double[] lambdas = config.get(ConfigKeys.EXIT_LAMBDA).stream().mapToDouble(Double::doubleValue).toArray();
        long start = System.nanoTime();
        // The backbone's own split when train.seed and data.validationExamples are its: the exits train
        // on its training examples, λ is chosen on its validation examples, the test set is reported.
        LabeledData all = (LabeledData) data.train();
        int held = config.get(ConfigKeys.DATA_VALIDATION_EXAMPLES);
        if (held >= all.size()) {
            throw new ConfigException("data.validationExamples = " + held + " leaves no training images of "
                    + all.size() + "; lower it");
        }
        int[] perm = Batcher.permutation(all.size(), config.get(ConfigKeys.TRAIN_SEED));
        LabeledData train = all.subset("train", perm, 0, all.size() - held);
        LabeledData validation = held == 0 ? null : all.subset("validation", perm, all.size() - held, held);
        EarlyExit.Result r = EarlyExit.sweep(model, train, validation, (LabeledData) data.test(), exitBlocks,
                lambdas, config.get(ConfigKeys.EXIT_EPOCHS), config.get(ConfigKeys.EXIT_ALTERNATE_STEPS), batch,
                config.get(ConfigKeys.EXIT_LR), config.get(ConfigKeys.TRAIN_SEED), console::println);
        double seconds = (System.nanoTime() - start) / 1e9;
        write(config, ckpt.modelSettings(), runDir, ckpt.describe(), r, seconds);
        Path report = RunReport.writeFor(runDir);
        EarlyExit.Sweep best = bestWithin(r, 0.005);
        console.printf(java.util.Locale.ROOT, "full depth: test accuracy %.2f%% at %.0f FLOPs per image (%.3f ms per "
                + "image measured)%n", 100 * r.fullAccuracy(), r.flopsPerImage(), r.msPerImage());
        String on = r.points().get(0).validation() != null ? "on the validation split" : "on the test set (no validation split)";
        console.println(best == null ? "no lambda stays within 0.5 points of full depth " + on
                : String.format(java.util.Locale.ROOT, "chosen %s (fewest FLOPs within 0.5 points of full depth): "
                + "lambda %s; on the test set %.2f%% (full depth %.2f%%) at %.1f%% fewer FLOPs (%.1f%% less wall time)",
                on, best.test().lambda(), 100 * best.test().accuracy(), 100 * r.fullAccuracy(),
                100 * (1 - best.test().flopsFraction()), 100 * (1 - best.test().wallFraction())));
        console.println("report: " + report);
        return runDir;
    }

    /**
     * The λ with the fewest FLOPs whose accuracy is within {@code points} of full depth, judged on the
     * validation split (on the test set when there is none), or null.
     */
    public static EarlyExit.Sweep bestWithin(EarlyExit.Result r, double points) {
        EarlyExit.Sweep best = null;
        for (EarlyExit.Sweep s : r.points()) {
            boolean valid = s.validation() != null;
            EarlyExit.Point p = valid ? s.validation() : s.test();
            double full = valid ? r.fullValidationAccuracy() : r.fullAccuracy();
            EarlyExit.Point b = best == null ? null : valid ? best.validation() : best.test();
            if (p.accuracy() >= full - points - 1e-12 && (b == null || p.flopsFraction() < b.flopsFraction())) {
                best = s;
            }
        }
        return best;
    }

    private static void write(JobConfig config, java.util.Map<String, String> model, Path runDir, String checkpoint,
                              EarlyExit.Result r, double seconds) {
        ObjectMapper json = new ObjectMapper();
        StringBuilder lines = new StringBuilder();
        ObjectNode ref = json.createObjectNode().put("type", "earlyExitReference").put("checkpoint", checkpoint)
                .put("accuracy", r.fullAccuracy()).put("flopsPerImage", r.flopsPerImage())
                .put("msPerImage", r.msPerImage());
        for (int b : r.exitBlocks()) {
            ref.withArray("exitBlocks").add(b);
        }
        if (!Double.isNaN(r.fullValidationAccuracy())) {
            ref.put("validationAccuracy", r.fullValidationAccuracy());
        }
        lines.append(ref).append('\n');
        for (int i = 0; i < r.points().size(); i++) {
            EarlyExit.Point p = r.points().get(i).test();
            EarlyExit.Point v = r.points().get(i).validation();
            ObjectNode o = json.createObjectNode().put("type", "earlyExit").put("lambda", p.lambda())
                    .put("accuracy", p.accuracy()).put("flopsFraction", p.flopsFraction())
                    .put("wallFraction", p.wallFraction());
            if (v != null) {
                o.put("validationAccuracy", v.accuracy()).put("validationFlopsFraction", v.flopsFraction());
            }
            for (double s : p.exitShares()) {
                o.withArray("exitShares").add(s);
            }
            for (double a : r.headAccuracy()[i]) {
                o.withArray("headAccuracy").add(a);
            }
            lines.append(o).append('\n');
        }
        // The keys this command read, and the model's as its checkpoint records them (what the report shows).
        StringBuilder conf = new StringBuilder("# roundhouse early-exit on " + checkpoint + "\n");
        for (ConfigKey<?> k : ConfigKeys.ALL) {
            if (READS.contains(k.name())) {
                conf.append(k.name()).append(" = ").append(config.asMap().get(k.name())).append('\n');
            }
        }
        conf.append("# the model, as the checkpoint records it\n");
        model.forEach((k, v) -> conf.append(k).append(" = ").append(v).append('\n'));
        RunFiles.writeAtomically(runDir.resolve("config.conf"), conf.toString());
        RunFiles.writeAtomically(runDir.resolve("metrics.jsonl"), lines.toString());
        EarlyExit.Sweep best = bestWithin(r, 0.005);
        ObjectNode summary = json.createObjectNode().put("kind", "earlyExit").put("checkpoint", checkpoint)
                .put("fullAccuracy", r.fullAccuracy()).put("seconds", seconds);
        if (best != null) {
            EarlyExit.Point t = best.test();
            summary.put("chosenLambda", t.lambda()).put("chosenOn", best.validation() != null ? "validation" : "test")
                    .put("testAccuracy", t.accuracy()).put("testFlopsFraction", t.flopsFraction())
                    .put("testWallFraction", t.wallFraction());
        }
        RunFiles.writeAtomically(runDir.resolve("summary.json"), summary.toPrettyString() + "\n");
    }
}
