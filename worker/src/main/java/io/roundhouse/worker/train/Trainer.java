package io.roundhouse.worker.train;

import static io.roundhouse.worker.config.ConfigKeys.BACKEND;
import static io.roundhouse.worker.config.ConfigKeys.DATA_DIR;
import static io.roundhouse.worker.config.ConfigKeys.DATA_VALIDATION_EXAMPLES;
import static io.roundhouse.worker.config.ConfigKeys.LOG_EVERY_STEPS;
import static io.roundhouse.worker.config.ConfigKeys.OUTPUT_DIR;
import static io.roundhouse.worker.config.ConfigKeys.TRAIN_BATCH_SIZE;
import static io.roundhouse.worker.config.ConfigKeys.TRAIN_BETA1;
import static io.roundhouse.worker.config.ConfigKeys.TRAIN_BETA2;
import static io.roundhouse.worker.config.ConfigKeys.TRAIN_CLIP_NORM;
import static io.roundhouse.worker.config.ConfigKeys.TRAIN_EPOCHS;
import static io.roundhouse.worker.config.ConfigKeys.TRAIN_EVAL_BATCH_SIZE;
import static io.roundhouse.worker.config.ConfigKeys.TRAIN_LR;
import static io.roundhouse.worker.config.ConfigKeys.TRAIN_MAX_STEPS;
import static io.roundhouse.worker.config.ConfigKeys.TRAIN_MIN_LR_FRACTION;
import static io.roundhouse.worker.config.ConfigKeys.TRAIN_SEED;
import static io.roundhouse.worker.config.ConfigKeys.TRAIN_WARMUP_STEPS;
import static io.roundhouse.worker.config.ConfigKeys.TRAIN_WEIGHT_DECAY;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.Backends;
import io.roundhouse.worker.config.ConfigException;
import io.roundhouse.worker.config.JobConfig;
import io.roundhouse.worker.data.FashionMnist;
import io.roundhouse.worker.data.ImageDataset;
import io.roundhouse.worker.model.ModelSpec;
import io.roundhouse.worker.model.MoeClassifier;
import io.roundhouse.worker.model.PhaseTimers;
import io.roundhouse.worker.model.StepStats;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Single-process training of the MoE classifier on Fashion-MNIST: preflight checks, data split,
 * the step loop (forward, backward, clip, AdamW with warm-up + cosine), per-step metrics to
 * {@code metrics.jsonl}, a progress line, validation every epoch and the test set at the end.
 */
public final class Trainer {
    private final JobConfig config;
    private final PrintStream console;

    /** What a finished run measured. */
    public record Result(Path runDir, int steps, double wallSeconds, double validationAccuracy,
                         double testAccuracy, double testLoss, double tokensPerSecond, String parameterDigest) {
    }

    public Trainer(JobConfig config, PrintStream console) {
        this.config = config;
        this.console = console;
    }

    /** Checks everything that can be checked without training; writes nothing. */
    public void preflight() {
        Backends.checkAvailable(config.get(BACKEND));
        FashionMnist.checkFolder(Path.of(config.get(DATA_DIR)));
        RunFiles.checkWritable(Path.of(config.get(OUTPUT_DIR)));
    }

    public Result run() throws IOException {
        preflight();
        FashionMnist.Splits data = FashionMnist.load(Path.of(config.get(DATA_DIR)));
        int batch = config.get(TRAIN_BATCH_SIZE);
        int validation = config.get(DATA_VALIDATION_EXAMPLES);
        int trainSize = data.train().size() - validation;
        if (trainSize <= 0) {
            throw new ConfigException("data.validationExamples = " + validation + " leaves no training examples: "
                    + "the training file has " + data.train().size() + "; lower data.validationExamples");
        }
        if (trainSize < batch) {
            throw new ConfigException("train.batchSize = " + batch + " is larger than the training split ("
                    + data.train().size() + " examples minus data.validationExamples = " + validation
                    + "); lower one of them");
        }
        long seed = config.get(TRAIN_SEED);
        int[] perm = permutation(data.train().size(), seed);
        ImageDataset train = data.train().subset("train", perm, 0, trainSize);
        ImageDataset valid = validation == 0 ? null : data.train().subset("validation", perm, trainSize, validation);

        try (Backend be = Backends.create(config.get(BACKEND))) {
            return train(be, train, valid, data.test());
        }
    }

    private static int[] permutation(int n, long seed) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) {
            p[i] = i;
        }
        SplittableRandom r = new SplittableRandom(seed ^ 0x5DEECE66DL);
        for (int i = n - 1; i > 0; i--) {
            int j = r.nextInt(i + 1);
            int t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        return p;
    }

    private Result train(Backend be, ImageDataset train, ImageDataset valid, ImageDataset test) throws IOException {
        int batch = config.get(TRAIN_BATCH_SIZE);
        int evalBatch = config.get(TRAIN_EVAL_BATCH_SIZE);
        int maxN = Math.max(batch, evalBatch);
        long seed = config.get(TRAIN_SEED);
        ModelSpec spec = ModelSpec.from(config, train.features(), train.classes());
        MoeClassifier model = MoeClassifier.local(be, spec, seed, maxN);
        AdamW opt = new AdamW(be, model.params(), config.get(TRAIN_BETA1), config.get(TRAIN_BETA2), 1e-8,
                config.get(TRAIN_WEIGHT_DECAY), config.get(TRAIN_CLIP_NORM));
        int stepsPerEpoch = train.size() / batch;
        int epochs = config.get(TRAIN_EPOCHS);
        int maxSteps = config.get(TRAIN_MAX_STEPS);
        int total = maxSteps > 0 ? Math.min(maxSteps, epochs * stepsPerEpoch) : epochs * stepsPerEpoch;
        LrSchedule lr = new LrSchedule(config.get(TRAIN_LR), config.get(TRAIN_MIN_LR_FRACTION),
                config.get(TRAIN_WARMUP_STEPS), total);

        // The model is built: only now does the run get a directory.
        Path runDir = RunFiles.createRunDir(Path.of(config.get(OUTPUT_DIR)));
        RunFiles.writeAtomically(runDir.resolve("config.conf"), config.describe());
        console.println("run directory: " + runDir);
        try (MetricsWriter metrics = new MetricsWriter(runDir.resolve("metrics.jsonl"))) {
            return loop(be, model, opt, lr, train, valid, test, runDir, metrics);
        }
    }

    private Result loop(Backend be, MoeClassifier model, AdamW opt, LrSchedule lr, ImageDataset train,
                        ImageDataset valid, ImageDataset test, Path runDir, MetricsWriter metrics) throws IOException {
        int batch = config.get(TRAIN_BATCH_SIZE);
        int evalBatch = config.get(TRAIN_EVAL_BATCH_SIZE);
        long seed = config.get(TRAIN_SEED);
        int logEvery = config.get(LOG_EVERY_STEPS);
        int total = lr.total();
        int stepsPerEpoch = train.size() / batch;
        ModelSpec spec = model.spec();

        console.printf("model: D=%d L=%d E=%d top-%d F=%d %s %s gate=%s capacity=%s, %,d parameters; backend %s%n",
                spec.dim(), spec.blocks(), spec.experts(), spec.topK(), spec.expertHidden(),
                spec.activation().name().toLowerCase(), spec.norm().name().toLowerCase(),
                spec.gate().name().toLowerCase(), spec.capacityFactor() > 0 ? spec.capacityFactor() + " (" + spec.capacity(batch) + " copies/expert/batch)" : "dropless",
                model.params().count(), be.name());
        console.printf("data: %d train, %d validation, %d test; %d steps (%d epochs of %d, batch %d)%n",
                train.size(), valid == null ? 0 : valid.size(), test.size(), total,
                (total + stepsPerEpoch - 1) / stepsPerEpoch, stepsPerEpoch, batch);

        Batcher batcher = new Batcher(be, train, batch, seed);
        Batcher validBatcher = valid == null ? null : new Batcher(be, valid, Math.min(evalBatch, valid.size()), seed);
        StepStats stats = new StepStats(spec.blocks(), spec.experts());
        Window window = new Window();
        long start = System.nanoTime();
        double validationAccuracy = Double.NaN;
        int step = 0;
        for (int epoch = 0; step < total; epoch++) {
            batcher.shuffle(epoch);
            for (int b = 0; b < stepsPerEpoch && step < total; b++) {
                long t0 = System.nanoTime();
                batcher.load(b * batch, batch);
                model.params().zeroGrads();
                model.timers().reset();
                model.forward(batcher.x().rows(batch), batcher.y().rows(batch), batcher.hostLabels(), true, seed, step, stats);
                model.backward();
                step++;
                double rate = lr.at(step);
                long tOpt = System.nanoTime();
                double gradNorm = opt.step(rate);
                model.timers().add(PhaseTimers.Phase.OPTIMIZER, System.nanoTime() - tOpt);
                double seconds = (System.nanoTime() - t0) / 1e9;
                window.add(stats, seconds);
                Map<String, Object> record = stepRecord(step, epoch, rate, gradNorm, stats, batch / seconds,
                        (System.nanoTime() - start) / 1e9);
                record.put("phaseMs", model.timers().millis());
                metrics.write(record);
                if (step % logEvery == 0 || step == total) {
                    double elapsed = (System.nanoTime() - start) / 1e9;
                    console.printf("[epoch %d] step %d/%d  loss %.4f  acc %.1f%%  lr %.2e  |g| %.2f  dropped %.1f%%  %,.0f tok/s  ETA %s%n",
                            epoch + 1, step, total, window.loss(), 100 * window.accuracy(), rate, gradNorm,
                            100 * window.droppedFraction(spec.topK() * spec.blocks()), window.tokensPerSecond(), eta(elapsed, step, total));
                    metrics.flush();
                    window.reset();
                }
            }
            if (valid != null && (step % stepsPerEpoch == 0 || step == total)) {
                double[] v = evaluate(model, validBatcher, evalBatch, stats);
                validationAccuracy = v[1];
                metrics.write(evalRecord("validation", step, epoch, v));
                console.printf("[epoch %d] validation: loss %.4f  acc %.2f%%%n", epoch + 1, v[0], 100 * v[1]);
            }
        }
        double trainSeconds = (System.nanoTime() - start) / 1e9;
        double[] t = evaluate(model, new Batcher(be, test, Math.min(evalBatch, test.size()), seed), evalBatch, stats);
        metrics.write(evalRecord("test", step, -1, t));
        double wall = (System.nanoTime() - start) / 1e9;
        Result result = new Result(runDir, step, wall, validationAccuracy, t[1], t[0], (double) step * batch / trainSeconds,
                model.params().digest());
        console.printf("test: loss %.4f  accuracy %.2f%%  (%d steps in %.1f s, %,.0f tok/s)%n",
                t[0], 100 * t[1], step, wall, result.tokensPerSecond());
        Map<String, Object> summary = new LinkedHashMap<>();
        summary.put("steps", step);
        summary.put("wallSeconds", wall);
        summary.put("tokensPerSecond", result.tokensPerSecond());
        summary.put("validationAccuracy", validationAccuracy);
        summary.put("testAccuracy", t[1]);
        summary.put("testLoss", t[0]);
        summary.put("parameters", model.params().count());
        summary.put("backend", be.name());
        summary.put("parameterDigest", result.parameterDigest());
        RunFiles.writeAtomically(runDir.resolve("summary.json"), MetricsWriter.json(summary) + "\n");
        return result;
    }

    /**
     * Mean cross-entropy and accuracy over a batcher's dataset, in its stored order, in evaluation
     * mode (no dropout, dropless).
     */
    static double[] evaluate(MoeClassifier model, Batcher data, int evalBatch, StepStats stats) {
        double loss = 0;
        long correct = 0;
        for (int from = 0; from < data.size(); from += evalBatch) {
            int n = Math.min(evalBatch, data.size() - from);
            data.load(from, n);
            model.forward(data.x().rows(n), data.y().rows(n), data.hostLabels(), false, 0, 0, stats);
            loss += stats.crossEntropy * n;
            correct += stats.correct;
        }
        return new double[] {loss / data.size(), correct / (double) data.size()};
    }

    private static Map<String, Object> stepRecord(int step, int epoch, double lr, double gradNorm, StepStats s,
                                                  double tokensPerSecond, double elapsed) {
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("type", "train");
        r.put("step", step);
        r.put("epoch", epoch + 1);
        r.put("lr", lr);
        r.put("loss", s.totalLoss());
        r.put("crossEntropy", s.crossEntropy);
        r.put("loadBalanceLoss", s.loadBalanceLoss);
        r.put("zLoss", s.zLoss);
        r.put("accuracy", s.accuracy());
        r.put("gradNorm", gradNorm);
        r.put("droppedCopies", s.droppedCopies);
        r.put("expertLoad", s.expertLoad);
        r.put("tokensPerSecond", tokensPerSecond);
        r.put("elapsedSeconds", elapsed);
        return r;
    }

    private static Map<String, Object> evalRecord(String split, int step, int epoch, double[] v) {
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("type", "eval");
        r.put("split", split);
        r.put("step", step);
        if (epoch >= 0) {
            r.put("epoch", epoch + 1);
        }
        r.put("crossEntropy", v[0]);
        r.put("accuracy", v[1]);
        return r;
    }

    private static String eta(double elapsed, int step, int total) {
        long s = Math.round(elapsed / step * (total - step));
        return s >= 60 ? (s / 60) + "m" + String.format("%02d", s % 60) + "s" : s + "s";
    }

    /** Averages over the steps since the last progress line. */
    private static final class Window {
        double loss;
        long correct;
        long examples;
        long dropped;
        double seconds;

        void add(StepStats s, double sec) {
            loss += s.totalLoss() * s.examples;
            correct += s.correct;
            examples += s.examples;
            dropped += s.droppedCopies;
            seconds += sec;
        }

        double loss() {
            return loss / examples;
        }

        double accuracy() {
            return correct / (double) examples;
        }

        double droppedFraction(int k) {
            return dropped / (double) (examples * k);
        }

        double tokensPerSecond() {
            return examples / seconds;
        }

        void reset() {
            loss = 0;
            correct = 0;
            examples = 0;
            dropped = 0;
            seconds = 0;
        }
    }
}
