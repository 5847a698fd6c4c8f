package io.roundhouse.driver.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.roundhouse.worker.config.ConfigKeys;
import io.roundhouse.worker.config.JobConfig;
import io.roundhouse.worker.train.RunFiles;
import io.roundhouse.worker.train.StnReport;
import io.roundhouse.worker.train.Trainer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * {@code roundhouse bench stn}: the Self-Tuning Network against (a) the fixed default
 * hyperparameters and (b) random search over the same hyperparameters with the same per-trial
 * budget, for each seed: test accuracy and NLL, compute (example passes through the model, forward
 * and backward, and wall seconds), and the schedules STN learnt. The random-search trial a seed
 * keeps is the one with the best validation accuracy (what a user would pick), reported with its
 * test numbers. Writes {@code report.md}, {@code results.json}, {@code schedules.svg} (the
 * hyperparameters each STN run learnt) and each run's directory under {@code --out}. A run whose
 * directory already holds a finished run of the same resolved configuration is not run again, so an
 * interrupted experiment continues where it stopped.
 */
final class StnExperiment {
    /** The hyperparameters STN tunes and random search draws, with the search's ranges. */
    private static final String TUNED = "dropout.input,dropout.block,router.jitter,loss.loadBalance,loss.zLoss";

    private final JobConfig base;
    private final List<Long> seeds;
    private final int trials;
    private final int parallel;
    private final Path out;

    StnExperiment(JobConfig base, List<Long> seeds, int trials, int parallel, Path out) {
        this.base = base;
        this.seeds = seeds;
        this.trials = trials;
        this.parallel = parallel;
        this.out = out;
    }

    /** One run's settings and outcome. */
    record Run(String arm, long seed, int trial, Map<String, String> overrides, Trainer.Result result,
               long examplePasses, Path runDir) {
    }

    Map<String, Object> run(PrintWriter console) throws Exception {
        try {
            Files.createDirectories(out);
        } catch (java.io.IOException e) {
            throw io.roundhouse.worker.UserException.cannotWrite(out, e);
        }
        List<java.util.concurrent.Callable<Run>> jobs = new ArrayList<>();
        for (long seed : seeds) {
            jobs.add(job("defaults", seed, 0, Map.of()));
            Random draw = new Random(1000 + seed);
            for (int t = 0; t < trials; t++) {
                jobs.add(job("random", seed, t + 1, sample(draw)));
            }
            Map<String, String> stn = new LinkedHashMap<>();
            stn.put("stn.tune", TUNED);
            stn.put("model.routerJitter", "0.01");  // STN cannot start a bounded value at its edge
            jobs.add(job("stn", seed, 0, stn));
        }
        console.printf("bench stn: %d runs (%d seeds × (defaults + %d random-search trials + STN)), %d at a time, "
                + "in %s%n", jobs.size(), seeds.size(), trials, parallel, out);
        console.flush();
        ExecutorService pool = Executors.newFixedThreadPool(parallel);
        List<Run> runs = new ArrayList<>();
        try {
            List<Future<Run>> fs = new ArrayList<>();
            for (var j : jobs) {
                fs.add(pool.submit(j));
            }
            for (Future<Run> f : fs) {
                Run r = f.get();
                runs.add(r);
                console.printf("  %-8s seed %d trial %2d: validation %.2f%%  test %.2f%%  NLL %.4f  %.0f s  %s%n", r.arm,
                        r.seed, r.trial, 100 * r.result.validationAccuracy(), 100 * r.result.testAccuracy(),
                        r.result.testLoss(), r.result.wallSeconds(), r.overrides);
                console.flush();
            }
        } finally {
            pool.shutdownNow();
        }
        Map<String, Object> results = summarise(runs);
        String report = report(runs, results);
        RunFiles.writeAtomically(out.resolve("report.md"), report);
        List<Path> stnRuns = runs.stream().filter(r -> r.arm.equals("stn")).map(Run::runDir).toList();
        RunFiles.writeAtomically(out.resolve("schedules.svg"), StnReport.schedules(stnRuns,
                runs.stream().filter(r -> r.arm.equals("stn")).map(r -> "seed " + r.seed).toList()));
        RunFiles.writeAtomically(out.resolve("results.json"),
                new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(results) + "\n");
        console.print(report);
        return results;
    }

    /** A random-search trial: every tuned hyperparameter drawn from its range (log-uniform for coefficients). */
    static Map<String, String> sample(Random r) {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("model.dropout.input", fmt(0.5 * r.nextDouble()));
        m.put("model.dropout.block", fmt(0.5 * r.nextDouble()));
        m.put("model.routerJitter", fmt(0.2 * r.nextDouble()));
        m.put("loss.loadBalance", fmt(Math.pow(10, -3 + 2 * r.nextDouble())));
        m.put("loss.zLoss", fmt(Math.pow(10, -4 + 2 * r.nextDouble())));
        return m;
    }

    private static String fmt(double v) {
        return String.format(Locale.ROOT, "%.4g", v);
    }

    private java.util.concurrent.Callable<Run> job(String arm, long seed, int trial, Map<String, String> overrides) {
        return () -> {
            Map<String, String> m = new LinkedHashMap<>(overrides);
            m.put("train.seed", Long.toString(seed));
            m.put("workers", "1");
            Path dir = out.resolve(arm + "-seed" + seed + (trial > 0 ? "-trial" + trial : ""));
            m.put("output.dir", dir.toString());
            JobConfig c = base.with(m);
            Trainer.Result r = finished(dir, c);
            if (r == null) {
                r = new Trainer(c, new PrintStream(new ByteArrayOutputStream())).run();
            }
            return new Run(arm, seed, trial, overrides, r, examplePasses(c, r), r.runDir());
        };
    }

    /** A finished run of exactly this configuration under {@code dir}, or null. */
    static Trainer.Result finished(Path dir, JobConfig c) throws IOException {
        if (!Files.isDirectory(dir)) {
            return null;
        }
        try (var runs = Files.list(dir)) {
            for (Path run : runs.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Path summary = run.resolve("summary.json");
                if (Files.exists(summary) && Files.readString(run.resolve("config.conf")).equals(c.describe())) {
                    return Trainer.Result.of(run, new ObjectMapper().readTree(summary.toFile()));
                }
            }
        }
        return null;
    }

    /**
     * Examples passed forward and backward through the model: the weight steps' batches, and for
     * STN its hyper steps' validation batches (evaluation passes, forward only, are the same for
     * every arm and left out).
     */
    private static long examplePasses(JobConfig c, Trainer.Result r) throws IOException {
        long passes = (long) r.steps() * c.get(ConfigKeys.TRAIN_BATCH_SIZE);
        if (!c.get(ConfigKeys.STN_TUNE).isEmpty()) {
            var summary = new ObjectMapper().readTree(r.runDir().resolve("summary.json").toFile());
            passes += summary.path("hyperSteps").asLong() * Math.min(c.get(ConfigKeys.TRAIN_BATCH_SIZE),
                    c.get(ConfigKeys.DATA_VALIDATION_EXAMPLES));
        }
        return passes;
    }

    private Map<String, Object> summarise(List<Run> runs) {
        Map<String, Object> res = new LinkedHashMap<>();
        List<Map<String, Object>> perSeed = new ArrayList<>();
        for (long seed : seeds) {
            Run def = pick(runs, "defaults", seed);
            Run stn = pick(runs, "stn", seed);
            List<Run> search = runs.stream().filter(r -> r.arm.equals("random") && r.seed == seed).toList();
            Map<String, Object> s = new LinkedHashMap<>();
            s.put("seed", seed);
            s.put("defaults", outcome(def));
            s.put("stn", outcome(stn));
            perSeed.add(s);
            if (search.isEmpty()) {
                continue;  // --trials 0: STN against the fixed settings only
            }
            Run best = search.get(0);
            long searchPasses = 0;
            double searchSeconds = 0;
            for (Run r : search) {
                searchPasses += r.examplePasses;
                searchSeconds += r.result.wallSeconds();
                if (r.result.validationAccuracy() > best.result.validationAccuracy()) {
                    best = r;
                }
            }
            s.put("randomSearchBest", outcome(best));
            s.put("randomSearchBestSettings", best.overrides);
            s.put("randomSearchPasses", searchPasses);
            s.put("randomSearchSeconds", searchSeconds);
            s.put("stnComputeShareOfSearch", (double) stn.examplePasses / searchPasses);
        }
        res.put("perSeed", perSeed);
        List<Map<String, Object>> all = new ArrayList<>();
        for (Run r : runs) {
            Map<String, Object> o = outcome(r);
            o.put("arm", r.arm);
            o.put("seed", r.seed);
            o.put("trial", r.trial);
            o.put("settings", r.overrides);
            all.add(o);
        }
        res.put("runs", all);
        return res;
    }

    private static Run pick(List<Run> runs, String arm, long seed) {
        return runs.stream().filter(r -> r.arm.equals(arm) && r.seed == seed).findFirst().orElseThrow();
    }

    private static Map<String, Object> outcome(Run r) {
        Map<String, Object> o = new LinkedHashMap<>();
        o.put("validationAccuracy", r.result.validationAccuracy());
        o.put("testAccuracy", r.result.testAccuracy());
        o.put("testNll", r.result.testLoss());
        o.put("examplePasses", r.examplePasses);
        o.put("wallSeconds", r.result.wallSeconds());
        o.put("runDir", r.runDir == null ? null : r.runDir.toString());
        return o;
    }

    @SuppressWarnings("unchecked")
    private String report(List<Run> runs, Map<String, Object> results) {
        StringBuilder sb = new StringBuilder();
        sb.append("# Self-Tuning Network vs fixed defaults vs random search\n\n");
        sb.append(String.format(Locale.ROOT, "Model and budget: the job's model, %d weight steps of batch %d per run; "
                + "seeds %s; random search: %d trials per seed, the trial with the best validation accuracy kept. "
                + "Compute: examples passed forward and backward (weight steps; STN adds its hyper steps); wall "
                + "seconds with %d runs at a time.%n%n", runs.get(0).result.steps(), base.get(ConfigKeys.TRAIN_BATCH_SIZE),
                seeds, trials, parallel));
        sb.append("| seed | arm | validation acc | test acc | test NLL | compute (M example passes) | wall s |\n");
        sb.append("| --- | --- | --- | --- | --- | --- | --- |\n");
        double[][] sums = new double[3][3];
        for (Map<String, Object> s : (List<Map<String, Object>>) results.get("perSeed")) {
            String[] arms = {"defaults", "randomSearchBest", "stn"};
            String[] names = {"defaults", "random search (best of " + trials + ")", "STN"};
            for (int a = 0; a < 3; a++) {
                Map<String, Object> o = (Map<String, Object>) s.get(arms[a]);
                if (o == null) {
                    continue;  // no random search
                }
                long passes = a == 1 ? (Long) s.get("randomSearchPasses") : (Long) o.get("examplePasses");
                double secs = a == 1 ? (Double) s.get("randomSearchSeconds") : (Double) o.get("wallSeconds");
                sb.append(String.format(Locale.ROOT, "| %s | %s | %.2f%% | %.2f%% | %.4f | %.2f | %.0f |%n", s.get("seed"),
                        names[a], 100 * (Double) o.get("validationAccuracy"), 100 * (Double) o.get("testAccuracy"),
                        (Double) o.get("testNll"), passes / 1e6, secs));
                sums[a][0] += (Double) o.get("testAccuracy");
                sums[a][1] += (Double) o.get("testNll");
                sums[a][2] += passes;
            }
        }
        int k = seeds.size();
        if (trials > 0) {
            sb.append(String.format(Locale.ROOT, "%nMeans over seeds: defaults %.2f%% / NLL %.4f; random search %.2f%% "
                    + "/ %.4f; STN %.2f%% / %.4f. STN's compute is %.1f%% of the search's.%n%n", 100 * sums[0][0] / k,
                    sums[0][1] / k, 100 * sums[1][0] / k, sums[1][1] / k, 100 * sums[2][0] / k, sums[2][1] / k,
                    100 * sums[2][2] / sums[1][2]));
        } else {
            sb.append(String.format(Locale.ROOT, "%nMeans over seeds: fixed %.2f%% / NLL %.4f; STN %.2f%% / %.4f.%n%n",
                    100 * sums[0][0] / k, sums[0][1] / k, 100 * sums[2][0] / k, sums[2][1] / k));
        }
        sb.append("Hyperparameters STN ended with (its schedules: the Self-Tuning Network section of `report.html` in each STN run's directory):\n\n");
        for (Run r : runs) {
            if (r.arm.equals("stn")) {
                try {
                    var summary = new ObjectMapper().readTree(r.runDir.resolve("summary.json").toFile());
                    sb.append("- seed ").append(r.seed).append(": ").append(summary.path("hyperparameters")).append('\n');
                } catch (IOException e) {
                    sb.append("- seed ").append(r.seed).append(": (summary unreadable: ").append(e.getMessage())
                            .append(")\n");
                }
            }
        }
        return sb.toString();
    }
}
