package io.roundhouse.worker.train;

import static io.roundhouse.worker.config.ConfigKeys.STN_ENTROPY_WEIGHT;
import static io.roundhouse.worker.config.ConfigKeys.STN_LR;
import static io.roundhouse.worker.config.ConfigKeys.STN_SIGMA;
import static io.roundhouse.worker.config.ConfigKeys.STN_TRAIN_STEPS;
import static io.roundhouse.worker.config.ConfigKeys.STN_VALID_STEPS;
import static io.roundhouse.worker.config.ConfigKeys.STN_WARMUP_STEPS;
import static io.roundhouse.worker.config.ConfigKeys.TRAIN_BATCH_SIZE;
import static io.roundhouse.worker.config.ConfigKeys.TRAIN_SEED;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.Philox;
import io.roundhouse.worker.config.JobConfig;
import io.roundhouse.worker.data.BatchSource;
import io.roundhouse.worker.data.Examples;
import io.roundhouse.worker.model.Hyper;
import io.roundhouse.worker.model.Model;
import io.roundhouse.worker.model.Objective;
import io.roundhouse.worker.model.Param;
import io.roundhouse.worker.model.Perturbation;
import io.roundhouse.worker.model.StepStats;
import io.roundhouse.worker.parallel.WorkerGroup;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A Self-Tuning Network's tuning on one worker (the centred Delta-STN form): the schedule, the
 * perturbations, the hyper steps and the hyper-optimizer.
 *
 * <p>Hyperparameters live unconstrained ({@code u}, with λ = T(u), see {@link Hyper}), with a
 * perturbation scale {@code σ = softplus(ρ)} each. A weight step gives row i of the global batch (a
 * classifier's example, a language model's token: {@link Model#tokensPerExample()} rows an example)
 * the perturbation {@code Δ_i = σ ⊙ ε_i}, ε drawn from the counter-based generator keyed by (seed,
 * step, i), so every worker draws the same ε for its rows and none is ever sent: the layers'
 * responses see Δ_i and the regularisers use {@code λ̃_i = T(u + Δ_i)}. After {@code stn.warmupSteps}
 * weight steps, every {@code stn.trainSteps} weight steps come {@code stn.validSteps} hyper steps:
 * evaluation mode (no dropout, no jitter, dropless, task loss only) on a validation batch, again
 * with a perturbation per example; backward gives {@code dL/dΔ_i}, so
 * {@code ∂L_val/∂u = Σ_i dL/dΔ_i} (the gradient through the best-response: no regulariser acts
 * in evaluation mode) and {@code ∂L_val/∂σ = Σ_i dL/dΔ_i ⊙ ε_i}. The workers' sums are added in one
 * all-reduce; every worker then takes the same Adam step on (u, ρ) minimising
 * {@code L_val − τ·Σ log σ} (the entropy of the perturbation up to a constant), so all switch to
 * the new λ at the same step without anyone broadcasting it.
 *
 * <p>State ({@link HyperOptimizer}: u, ρ and their Adam moments) lives in the model's {@code stn.lambda} and
 * {@code stn.sigma} parameters, so checkpoints carry it and the parameter digest covers it; the Adam
 * step count is a function of the weight step.
 */
final class StnTuner {
    private static final long EPS_SEED = 0x53544E5F45505331L;
    private static final long STREAMS_PER_STEP = 64;   // site 0: the weight step, 1 + v: hyper step v

    private final Backend be;
    private final Model model;
    private final WorkerGroup group;
    private final Perturbation pert;
    private final List<Hyper> tuned;
    private final int h;
    private final int rowsPer;            // perturbed rows per example
    private final int warmup;
    private final int trainSteps;
    private final int validSteps;
    private final long seed;
    private final BatchSource valid;
    private final boolean partitioned;
    private final int shard;              // this worker's examples of a validation batch
    private final int lo;                 // where they start in the global batch
    private final int globalBatch;        // examples of a validation batch over every worker
    private final int batchesPerEpoch;
    private final float[] eps;
    private final double[] drawSigma;     // σ while drawing a pass's perturbations
    private final float[] delta;
    private final float[][] values;
    private final float[] dDelta;
    private final float[] sums;
    private final StepStats stats;
    private final HyperOptimizer opt;

    StnTuner(JobConfig config, Backend be, Model model, WorkerGroup group, Examples validation,
             boolean partitioned) {
        this.be = be;
        this.model = model;
        this.group = group;
        this.pert = model.perturbation();
        this.tuned = model.spec().stn().tuned();
        this.h = tuned.size();
        this.rowsPer = model.routedRowsPerExample();  // the NiNformer perturbs each patch, the LM each token
        this.warmup = config.get(STN_WARMUP_STEPS);
        this.trainSteps = config.get(STN_TRAIN_STEPS);
        this.validSteps = config.get(STN_VALID_STEPS);
        this.seed = config.get(TRAIN_SEED);
        this.partitioned = partitioned;
        int workers = group.size();
        int rank = group.rank();
        int batch = config.get(TRAIN_BATCH_SIZE);
        if (partitioned) {
            // Each worker's validation examples are its own part's: its shard of a batch comes from them.
            int share = WorkerGroup.shardStart(batch, rank + 1, workers) - WorkerGroup.shardStart(batch, rank, workers);
            this.shard = Math.min(share, validation.size());
            this.lo = 0;
            float[] s = {shard, validation.size() / shard};
            float[] all = new float[2 * workers];
            all[2 * rank] = s[0];
            all[2 * rank + 1] = s[1];
            group.sum(all);
            int total = 0;
            int fewest = Integer.MAX_VALUE;
            for (int w = 0; w < workers; w++) {
                total += Math.round(all[2 * w]);
                fewest = Math.min(fewest, Math.round(all[2 * w + 1]));
            }
            this.globalBatch = total;
            this.batchesPerEpoch = fewest;
        } else {
            this.globalBatch = Math.min(batch, validation.size());
            this.lo = WorkerGroup.shardStart(globalBatch, rank, workers);
            this.shard = WorkerGroup.shardStart(globalBatch, rank + 1, workers) - lo;
            this.batchesPerEpoch = validation.size() / globalBatch;
        }
        this.valid = validation.batches(be, shard, partitioned ? seed + 7919L * (rank + 1) + 17 : seed + 17);
        int n = model.maxBatch() * rowsPer;
        this.eps = new float[n * h];
        this.drawSigma = new double[h];
        this.delta = new float[n * h];
        this.values = new float[h][n];
        this.dDelta = new float[n * h];
        this.sums = new float[2 * h + 3];
        this.stats = new StepStats(model.moeLayers(), model.spec().experts());
        double[] u0 = new double[h];
        for (int j = 0; j < h; j++) {
            u0[j] = tuned.get(j).unconstrained(config.get(tuned.get(j).initialKey()).doubleValue());
        }
        this.opt = new HyperOptimizer(u0, config.get(STN_SIGMA), config.get(STN_LR), config.get(STN_ENTROPY_WEIGHT));
        store();
    }

    /** After a checkpoint was loaded into the model at {@code step}: continue from its state. */
    void resumed(int step) {
        load(model.hyperLambda(), opt.u, opt.mu, opt.vu);
        load(model.hyperSigma(), opt.rho, opt.mr, opt.vr);
        opt.setSteps(hyperStepsUpTo(step));
        publish();
    }

    /** Hyper steps taken once weight step {@code step} (1-based count) and its hyper steps are done. */
    int hyperStepsUpTo(int step) {
        return step <= warmup ? 0 : (step - warmup) / trainSteps * validSteps;
    }

    /** Whether hyper steps follow weight step {@code step} (the count of weight steps done). */
    boolean due(int step) {
        return step > warmup && (step - warmup) % trainSteps == 0;
    }

    /**
     * The weight step {@code step}'s perturbation for this worker's examples
     * {@code [first, first + n)} of the global batch: Δ for the responses, λ̃ for the regularisers.
     */
    void perturbWeightStep(long step, long first, int n) {
        int rows = n * rowsPer;
        draw(step * STREAMS_PER_STEP, first * rowsPer, rows);
        for (int j = 0; j < h; j++) {
            Hyper hy = tuned.get(j);
            for (int i = 0; i < rows; i++) {
                values[j][i] = (float) hy.value(opt.u(j) + delta[i * h + j]);
            }
        }
        pert.set(rows, delta, values);
    }

    boolean tunes(Hyper hy) {
        return tuned.contains(hy);
    }

    /** The last weight step's per-example image shifts (augment.shift tuned), for its n examples. */
    int[] shifts(int n) {
        int j = tuned.indexOf(Hyper.AUGMENT_SHIFT);
        int[] s = new int[n];
        for (int i = 0; i < n; i++) {
            s[i] = (int) values[j][i];
        }
        return s;
    }

    /** Evaluation: the plain network at λ. */
    void off() {
        pert.off();
    }

    /**
     * The hyper steps after weight step {@code step}: returns the metrics record (λ, σ, the
     * hypergradient, the validation loss they saw).
     */
    Map<String, Object> hyperSteps(int step) {
        long t0 = System.nanoTime();
        double loss = 0;
        double correct = 0;
        double examples = 0;
        float[] gu = new float[h];
        for (int v = 0; v < validSteps; v++) {
            int epoch = opt.steps() / batchesPerEpoch;
            int b = opt.steps() % batchesPerEpoch;
            valid.shuffle(epoch);
            valid.load(partitioned ? b * shard : b * globalBatch + lo, shard);
            // ε keyed by the row's index in the global batch (partitioned: by worker and index)
            int rows = shard * rowsPer;
            draw(step * STREAMS_PER_STEP + 1 + v, partitioned ? (long) group.rank() << 32 : (long) lo * rowsPer, rows);
            pert.set(rows, delta, null);
            model.forward(valid, shard, false, seed, step, lo, stats);
            model.backward(globalBatch);
            be.read(pert.dDelta(), dDelta);
            java.util.Arrays.fill(sums, 0f);
            for (int i = 0; i < rows; i++) {
                for (int j = 0; j < h; j++) {
                    sums[j] += dDelta[i * h + j];
                    sums[h + j] += dDelta[i * h + j] * eps[i * h + j];
                }
            }
            sums[2 * h] = (float) (stats.crossEntropy * stats.examples);
            sums[2 * h + 1] = stats.correct;
            sums[2 * h + 2] = stats.examples;
            group.sum(sums);
            opt.step(java.util.Arrays.copyOfRange(sums, 0, h), java.util.Arrays.copyOfRange(sums, h, 2 * h));
            System.arraycopy(sums, 0, gu, 0, h);
            loss += sums[2 * h];
            correct += sums[2 * h + 1];
            examples += sums[2 * h + 2];
        }
        store();
        pert.off();
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("type", "hyper");
        r.put("step", step);
        r.put("version", opt.steps());
        r.put("validLoss", loss / examples);
        if (model.objective() == Objective.ACCURACY) {
            r.put("validAccuracy", correct / examples);
        } else {
            r.put("validBitsPerByte", model.objective().value(loss / examples, 0));
        }
        r.put("lambda", lambda());
        Map<String, Object> sigma = new LinkedHashMap<>();
        Map<String, Object> band = new LinkedHashMap<>();
        Map<String, Object> grad = new LinkedHashMap<>();
        for (int j = 0; j < h; j++) {
            double s = opt.sigma(j);
            Hyper hy = tuned.get(j);
            sigma.put(hy.id(), s);
            band.put(hy.id(), List.of(hy.value(opt.u(j) - s), hy.value(opt.u(j) + s)));
            grad.put(hy.id(), gu[j]);
        }
        r.put("sigma", sigma);
        r.put("band", band);
        r.put("hypergradient", grad);
        r.put("ms", (System.nanoTime() - t0) / 1e6);
        return r;
    }

    /** λ by name. */
    Map<String, Object> lambda() {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int j = 0; j < h; j++) {
            m.put(tuned.get(j).id(), tuned.get(j).value(opt.u(j)));
        }
        return m;
    }

    int hyperStepCount() {
        return opt.steps();
    }

    /** ε and Δ = σ⊙ε for examples [first, first + n) at this stream. */
    private void draw(long stream, long first, int n) {
        long key = seed ^ EPS_SEED;
        for (int j = 0; j < h; j++) {
            drawSigma[j] = opt.sigma(j);
        }
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < h; j++) {
                long e = ((first + i) * h + j) * 2;
                double u1 = 1.0 - Philox.uniform(key, stream, e);
                double u2 = Philox.uniform(key, stream, e + 1);
                float g = (float) (Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2));
                eps[i * h + j] = g;
                delta[i * h + j] = (float) (drawSigma[j] * g);
            }
        }
    }

    /** The host state into the model's parameters (for checkpoints and the digest) and λ into the model. */
    private void store() {
        save(model.hyperLambda(), opt.u, opt.mu, opt.vu);
        save(model.hyperSigma(), opt.rho, opt.mr, opt.vr);
        publish();
    }

    private void publish() {
        double[] lam = new double[h];
        for (int j = 0; j < h; j++) {
            lam[j] = tuned.get(j).value(opt.u(j));
        }
        pert.setCurrent(lam);
    }

    private void save(Param p, float[] x, float[] m, float[] v) {
        be.write(p.value(), x);
        be.write(p.m(), m);
        be.write(p.v(), v);
    }

    private void load(Param p, float[] x, float[] m, float[] v) {
        be.read(p.value(), x);
        be.read(p.m(), m);
        be.read(p.v(), v);
    }
}
