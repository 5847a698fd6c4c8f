package io.roundhouse.driver;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.Backends;
import io.roundhouse.worker.checkpoint.CheckpointStore;
import io.roundhouse.worker.data.FashionMnist;
import io.roundhouse.worker.data.LabeledData;
import io.roundhouse.worker.model.BackendCheck;
import io.roundhouse.worker.model.ImageModel;
import io.roundhouse.worker.robust.RobustEvaluation;
import io.roundhouse.worker.train.ModelCheckpoint;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Arrays;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code roundhouse eval}: an image model's clean and robust (PGD) accuracy on the test set. */
@Command(name = "eval", mixinStandardHelpOptions = true,
        description = "Evaluate an image model's checkpoint (model.kind=classifier or ninformer) on the Fashion-MNIST "
                + "test set: clean accuracy, accuracy under L-inf PGD attacks (PGD-10 and PGD-20 by default: if "
                + "PGD-20 is far below PGD-10, the model masks gradients) and router robustness: the share of routed "
                + "rows per MoE layer whose chosen experts the attack changed.")
final class EvalCommand implements Callable<Integer> {
    @Option(names = "--checkpoint", required = true, paramLabel = "DIR",
            description = "a checkpoint step folder, or a folder of them (the latest complete one is taken)")
    String checkpoint;

    @Option(names = "--data", paramLabel = "DIR", description = "the Fashion-MNIST IDX folder (default: data.dir's "
            + "default, ${DEFAULT-VALUE})", defaultValue = "/usr/share/datasets/fashion-mnist")
    Path data;

    @Option(names = "--epsilon", defaultValue = "0.1",
            description = "the attack's L-inf radius in pixel units, [0, 1] (default: ${DEFAULT-VALUE})")
    double epsilon;

    @Option(names = "--step-size", defaultValue = "0",
            description = "PGD's step in pixel units; 0 = epsilon/8 (default: ${DEFAULT-VALUE})")
    double stepSize;

    @Option(names = "--steps", defaultValue = "10,20", split = ",",
            description = "PGD step counts, one attack each (default: ${DEFAULT-VALUE})")
    int[] steps;

    @Option(names = "--random-start", defaultValue = "true", negatable = true, fallbackValue = "true",
            description = "start each attack from a uniform random point of the epsilon ball (default: on)")
    boolean randomStart;

    @Option(names = "--examples", defaultValue = "0",
            description = "the test set's first N images; 0 = all (default: ${DEFAULT-VALUE})")
    int examples;

    @Option(names = "--batch", defaultValue = "250", description = "images per forward (default: ${DEFAULT-VALUE})")
    int batch;

    @Option(names = "--seed", defaultValue = "1", description = "keys the random starts (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--backend", defaultValue = "cpu", description = "cpu, cuda or auto (default: ${DEFAULT-VALUE})")
    String backend;

    @Option(names = "--json", paramLabel = "FILE", description = "also write the figures to FILE as JSON (atomically)")
    Path json;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws IOException {
        double step = stepSize > 0 ? stepSize : epsilon / 8;
        if (!(epsilon >= 0 && epsilon <= 1) || !(step > 0 && step <= 1) || batch < 1 || examples < 0
                || steps.length == 0 || Arrays.stream(steps).anyMatch(s -> s < 1)) {
            throw new picocli.CommandLine.ParameterException(spec.commandLine(), "--epsilon must be in [0, 1], "
                    + "--step-size in [0, 1], --batch >= 1, --examples >= 0 and every --steps >= 1");
        }
        ModelCheckpoint ckpt = ModelCheckpoint.open(checkpoint, CheckpointStore::local);
        FashionMnist.checkFolder(data);
        LabeledData test = (LabeledData) FashionMnist.load(data).test();
        int n = examples == 0 ? test.size() : Math.min(examples, test.size());
        Backends.checkAvailable(backend);
        PrintWriter out = spec.commandLine().getOut();
        try (Backend be = Backends.create(backend, null, BackendCheck::differences)) {
            ImageModel model = ckpt.imageModel(be, batch, "roundhouse eval attacks image models");
            out.printf(Locale.ROOT, "%s%n%s: %,d test images; L-inf PGD, epsilon %.4g (pixels), step %.4g, %s%n",
                    ckpt.describe(), model.describe(), n, epsilon, step, randomStart ? "random start" : "from the image");
            out.flush();
            long start = System.nanoTime();
            RobustEvaluation.Row[] rows = RobustEvaluation.run(model, test, n, Math.min(batch, n), epsilon, step, steps,
                    randomStart, seed, done -> { });
            double seconds = (System.nanoTime() - start) / 1e9;
            for (RobustEvaluation.Row r : rows) {
                out.printf(Locale.ROOT, "%-8s accuracy %6.2f%%%s%n", r.steps() == 0 ? "clean" : "PGD-" + r.steps(),
                        100 * r.accuracy(), r.steps() == 0 ? "" : String.format(Locale.ROOT,
                                "   experts changed %5.1f%% of routed rows%s", 100 * r.routerChangedMean(),
                                perLayer(r.routerChanged())));
            }
            out.printf(Locale.ROOT, "(%.1f s)%n", seconds);
            if (json != null) {
                write(rows, n, step, ckpt.describe(), model.describe());
                out.println("wrote " + json);
            }
        }
        return 0;
    }

    private static String perLayer(double[] share) {
        if (share.length < 2) {
            return "";
        }
        StringBuilder b = new StringBuilder(" (by layer:");
        for (double s : share) {
            b.append(String.format(Locale.ROOT, " %.1f%%", 100 * s));
        }
        return b.append(')').toString();
    }

    private void write(RobustEvaluation.Row[] rows, int n, double step, String ckpt, String model) throws IOException {
        ObjectMapper mapper = new ObjectMapper();
        ObjectNode root = mapper.createObjectNode().put("checkpoint", ckpt).put("model", model).put("examples", n)
                .put("epsilon", epsilon).put("stepSize", step).put("randomStart", randomStart).put("seed", seed);
        ArrayNode list = root.putArray("rows");
        for (RobustEvaluation.Row r : rows) {
            ObjectNode o = list.addObject().put("attack", r.steps() == 0 ? "clean" : "pgd").put("steps", r.steps())
                    .put("accuracy", r.accuracy());
            ArrayNode changed = o.putArray("routerChanged");
            for (double s : r.routerChanged()) {
                changed.add(s);
            }
        }
        Path target = json.toAbsolutePath();
        Path tmp = target.resolveSibling(target.getFileName() + ".tmp");
        mapper.writerWithDefaultPrettyPrinter().writeValue(tmp.toFile(), root);
        Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }
}
