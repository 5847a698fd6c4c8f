package io.roundhouse.driver.bench;

import io.roundhouse.comms.CommsConfig;
import io.roundhouse.comms.Transport;
import io.roundhouse.worker.config.JobConfig;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.List;
import java.util.Map;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code roundhouse bench kernels|layer|alltoall|train|lm|stn|routers|cuda|cluster}: throughput against baselines measured in the same run. */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Benchmarks, each reported as a ratio against a baseline measured in the same run.")
public final class BenchCommand implements Callable<Integer> {
    private static final List<String> BENCHES = List.of("kernels", "layer", "alltoall", "train", "lm", "stn", "routers", "cuda", "cluster");

    @Parameters(index = "0", paramLabel = "WHAT", defaultValue = "kernels",
            description = "kernels: sgemm at 1024^3 and at the expert shapes, grouped expert FFN forward+backward; "
                    + "layer: one MoE layer's forward+backward on the CPU against the GEMM-only ideal, the sgemm peak and "
                    + "PyTorch at the same shapes (--tokens --dim --ffn --experts --topk --activation); "
                    + "alltoall: all-to-all GB/s and round-trip latency over IPC and UDP against memcpy and raw UDP; "
                    + "train: training tokens/s with W workers against W=1, and the share of a step spent communicating; "
                    + "lm: the language model's training tokens/s by phase for each W beside its PyTorch twin at the same "
                    + "shapes and threads, and attention forward+backward GFLOP/s against sgemm (-c conf/kjv-moe-lm.conf); "
                    + "stn: the Self-Tuning Network against the fixed defaults and random search (accuracy, NLL, compute); "
                    + "routers: the configured model with each router at equal active parameters and token budget, and "
                    + "its dense model (bits per byte or accuracy, tokens/s, balance); without -c or overrides the default "
                    + "LM (conf/kjv-moe-lm.conf, the first seed) and the classifier (every seed), unattended; "
                    + "cuda: GEMM TFLOP/s (fp32, bf16 tensor cores), pinned and pageable copy GB/s, and an MoE layer's "
                    + "forward+backward (fp32, bf16) on GPU 0; "
                    + "cluster: on the Spark cluster it is submitted to (or an embedded local[W]), as barrier stages: the "
                    + "point-to-point latency and bandwidth matrix, all-to-all and all-reduce bus bandwidth by size, one "
                    + "MoE layer's step at W = 1..N (weak and strong scaling) by phase, and an alpha-beta cost model "
                    + "fitted to the links predicting the model's step at W = 8..256 (default model: the default LM, "
                    + "conf/kjv-moe-lm.conf, at its workers)")
    String what;

    @Parameters(index = "1..*", paramLabel = "KEY=VALUE", arity = "0..*",
            description = "config overrides, e.g. model.activation=swiglu train.batchSize=512")
    java.util.List<String> overrides = java.util.List.of();

    @Option(names = {"-c", "--config"}, paramLabel = "FILE",
            description = "job config whose model shapes to measure (default: the built-in defaults)")
    Path config;

    @Option(names = "--tokens", paramLabel = "N", defaultValue = "4096", description = "layer: tokens N (default 4096)")
    int tokens;

    @Option(names = "--dim", paramLabel = "D", defaultValue = "256", description = "layer: model width D (default 256)")
    int dim;

    @Option(names = "--ffn", paramLabel = "F", defaultValue = "1024", description = "layer: expert hidden width F (default 1024)")
    int ffn;

    @Option(names = "--experts", paramLabel = "E", defaultValue = "8", description = "layer: experts E (default 8)")
    int experts;

    @Option(names = "--topk", paramLabel = "K", defaultValue = "2", description = "layer: experts per token K (default 2)")
    int topK;

    @Option(names = "--activation", paramLabel = "ACT", defaultValue = "gelu", description = "layer: gelu or swiglu (default gelu)")
    String activation;

    @Option(names = "--max-size", paramLabel = "BYTES", defaultValue = "16777216",
            description = "cluster: the largest collective size, bytes per worker; sizes go from 4 KiB by factors of 4 "
                    + "(default 16 MiB)")
    int maxSize;

    @Option(names = "--seconds", defaultValue = "1.0",
            description = "time per measurement, split over 5 timed trials after a warm-up trial; the median is reported (default 1.0)")
    double seconds;

    @Option(names = "--json", paramLabel = "FILE", description = "also write the results as JSON")
    Path json;

    @Option(names = "--term-length", paramLabel = "BYTES", description = "alltoall: Aeron term length (default: the comms default)")
    Integer termLength;

    @Option(names = "--mtu-udp", paramLabel = "BYTES", description = "alltoall: UDP mtu (default: the comms default)")
    Integer mtuUdp;

    @Option(names = "--mtu-ipc", paramLabel = "BYTES", description = "alltoall: IPC mtu (default: the comms default)")
    Integer mtuIpc;

    @Option(names = "--driver-threading", paramLabel = "MODE", description = "alltoall: shared, shared_network or dedicated")
    String driverThreading;

    @Option(names = "--idle", paramLabel = "STRATEGY", description = "alltoall: member idle strategy: auto (default: from the cores), backoff, yielding or busy")
    String idle;

    @Option(names = "--workers", paramLabel = "W[,W...]", split = ",", defaultValue = "1,2",
            description = "train, lm: the worker counts to measure, the first being the baseline (default 1,2); "
                    + "cluster: the worker counts of the scaling stages, the largest also measuring the links "
                    + "(default 1, 2, 4, ... up to the config's workers)")
    java.util.List<Integer> workers;

    @Option(names = "--steps", defaultValue = "200",
            description = "train, lm: optimizer steps per worker count; the first 30%% are warm-up (default 200)")
    int steps;

    @Option(names = "--seeds", paramLabel = "S[,S...]", split = ",", defaultValue = "1,2,3",
            description = "stn, routers: training seeds, each running every arm (default 1,2,3)")
    java.util.List<Long> seeds;

    @Option(names = "--trials", defaultValue = "10", description = "stn: random-search trials per seed (default 10)")
    int trials;

    @Option(names = "--parallel", defaultValue = "1",
            description = "stn: runs at a time, each one worker in this JVM (set OPENBLAS_NUM_THREADS to cores / this)")
    int parallel;

    @Option(names = "--out", paramLabel = "DIR",
            description = "stn, routers, cluster: folder for the runs, report.md and results.json (default "
                    + "runs/stn-experiment, runs/router-comparison, runs/bench-cluster)")
    Path outDir;

    @Option(names = "--fraction", defaultValue = "0.3333",
            description = "routers: each run's steps as a fraction of the configured run's (default 1/3)")
    double fraction;

    @Option(names = "--arms", paramLabel = "ARM[,ARM...]", split = ",",
            description = "routers: only these arms (softmax, switch, sigmoid, noisy, dense-to-sparse, expert-choice, "
                    + "shared, fine, dense; default every one)")
    java.util.List<String> arms;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    /** Which benchmarks read each option; any other given to a benchmark is refused, never ignored. */
    private static final Map<String, List<String>> OPTION_BENCHES = Map.ofEntries(
            Map.entry("--seconds", List.of("kernels", "layer", "alltoall", "lm", "cuda", "cluster")),
            Map.entry("--config", List.of("kernels", "train", "lm", "stn", "routers", "cuda", "cluster")),
            Map.entry("--max-size", List.of("cluster")),
            Map.entry("--tokens", List.of("layer")),
            Map.entry("--dim", List.of("layer")),
            Map.entry("--ffn", List.of("layer")),
            Map.entry("--experts", List.of("layer")),
            Map.entry("--topk", List.of("layer")),
            Map.entry("--activation", List.of("layer")),
            Map.entry("--term-length", List.of("alltoall")),
            Map.entry("--mtu-udp", List.of("alltoall")),
            Map.entry("--mtu-ipc", List.of("alltoall")),
            Map.entry("--driver-threading", List.of("alltoall")),
            Map.entry("--idle", List.of("alltoall")),
            Map.entry("--workers", List.of("train", "lm", "cluster")),
            Map.entry("--steps", List.of("train", "lm")),
            Map.entry("--seeds", List.of("stn", "routers")),
            Map.entry("--fraction", List.of("routers")),
            Map.entry("--arms", List.of("routers")),
            Map.entry("--trials", List.of("stn")),
            Map.entry("--parallel", List.of("stn")),
            Map.entry("--out", List.of("stn", "routers", "cluster")));

    @Override
    public Integer call() throws Exception {
        check();
        PrintWriter out = spec.commandLine().getOut();
        if (what.equals("alltoall")) {
            java.util.Map<String, Object> r = new AllToAllBench(seconds, this::tuned).run(out);
            writeJson(r);
            return 0;
        }
        if (what.equals("cluster")) {
            writeJson(cluster().run(out));
            return 0;
        }
        if (what.equals("layer")) {
            writeJson(new LayerBench(tokens, dim, ffn, experts, topK,
                    io.roundhouse.kernels.Activation.valueOf(activation.toUpperCase(java.util.Locale.ROOT)), seconds)
                    .run(out));
            return 0;
        }
        JobConfig c = JobConfig.load(config, io.roundhouse.driver.ConfigOptions.parseOverrides(overrides));
        if (what.equals("cuda")) {
            writeJson(new CudaBench(c, seconds).run(out));
        } else if (what.equals("stn")) {
            writeJson(new StnExperiment(c, seeds, trials, parallel,
                    outDir != null ? outDir : Path.of("runs", "stn-experiment")).run(out));
        } else if (what.equals("routers")) {
            Path dir = outDir != null ? outDir : Path.of("runs", "router-comparison");
            List<String> only = arms == null ? List.of() : arms;
            writeJson(config == null && overrides.isEmpty() ? RouterBench.defaults(seeds, fraction, only, dir, out)
                    : new RouterBench(c, seeds, fraction, only, dir).run(out));
        } else if (what.equals("train")) {
            writeJson(new TrainBench(c, workers, steps).run(out, spec.commandLine().getErr()));
        } else if (what.equals("lm")) {
            writeJson(new LmBench(c, workers, steps, seconds).run(out, spec.commandLine().getErr()));
        } else {
            KernelBench.Report r = new KernelBench(c, seconds).run(out);
            if (json != null) {
                io.roundhouse.worker.train.RunFiles.writeAtomically(json, r.toJson());
            }
        }
        return 0;
    }

    /** bench cluster on the given config, or the default language model's. */
    private ClusterBench cluster() {
        Path conf = config;
        if (conf == null) {
            conf = Installation.file("conf/kjv-moe-lm.conf");
            if (conf == null) {
                throw new io.roundhouse.worker.UserException(io.roundhouse.worker.UserException.USAGE, "bench cluster "
                        + "without -c measures the default language model (conf/kjv-moe-lm.conf), which is not beside "
                        + "this installation or in the working folder; give -c CONF");
            }
        }
        JobConfig c = JobConfig.load(conf, io.roundhouse.driver.ConfigOptions.parseOverrides(overrides));
        List<Integer> counts = workers;
        if (!spec.commandLine().getParseResult().hasMatchedOption("--workers")) {
            int w = c.get(io.roundhouse.worker.config.ConfigKeys.WORKERS);
            java.util.TreeSet<Integer> set = new java.util.TreeSet<>(List.of(w));
            for (int k = 1; k < w; k *= 2) {
                set.add(k);
            }
            counts = List.copyOf(set);
        }
        return new ClusterBench(c, counts, ClusterBench.sizesUpTo(maxSize), seconds,
                outDir != null ? outDir : Path.of("runs", "bench-cluster"));
    }

    /** Refuses, before anything runs, an unknown benchmark, an option it does not read, a value out of range. */
    private void check() {
        CommandLine cl = spec.commandLine();
        if (!BENCHES.contains(what)) {
            throw new ParameterException(cl, "unknown benchmark '" + what + "': available: " + String.join(", ", BENCHES));
        }
        for (Map.Entry<String, List<String>> o : OPTION_BENCHES.entrySet()) {
            if (cl.getParseResult().hasMatchedOption(o.getKey()) && !o.getValue().contains(what)) {
                throw new ParameterException(cl, o.getKey() + " is not read by bench " + what + " (only by bench "
                        + String.join(", ", o.getValue()) + "); leave it out");
            }
        }
        if (!overrides.isEmpty() && (what.equals("alltoall") || what.equals("layer"))) {
            throw new ParameterException(cl, "bench " + what + " reads no job config; leave out " + overrides.get(0));
        }
        if (tokens < 1 || dim < 1 || ffn < 1 || experts < 1 || topK < 1 || topK > experts) {
            throw new ParameterException(cl, "bench layer needs --tokens, --dim, --ffn, --experts of at least 1 and "
                    + "--topk in [1, --experts] (got --tokens " + tokens + " --dim " + dim + " --ffn " + ffn
                    + " --experts " + experts + " --topk " + topK + ")");
        }
        if (!List.of("gelu", "swiglu").contains(activation)) {
            throw new ParameterException(cl, "--activation " + activation + ": use gelu or swiglu");
        }
        if (!(seconds > 0 && seconds <= 600)) {
            throw new ParameterException(cl, "--seconds " + seconds + " must be in (0, 600]");
        }
        if (steps < 20) {
            throw new ParameterException(cl, "--steps " + steps + " is too few to measure: use at least 20");
        }
        if (workers.isEmpty() || workers.stream().anyMatch(w -> w < 1 || w > 64)) {
            throw new ParameterException(cl, "--workers " + workers + ": each worker count must be in [1, 64]");
        }
        if (!(fraction > 0 && fraction <= 1)) {
            throw new ParameterException(cl, "--fraction " + fraction + " must be in (0, 1]");
        }
        if (seeds.isEmpty() || trials < 1 || parallel < 1) {
            throw new ParameterException(cl, "bench stn needs at least one seed, one trial and --parallel of at least 1 "
                    + "(got --seeds " + seeds + " --trials " + trials + " --parallel " + parallel + ")");
        }
        if (ClusterBench.sizesUpTo(maxSize).isEmpty()) {
            throw new ParameterException(cl, "--max-size " + maxSize + " is below the smallest size, 4096");
        }
        if (what.equals("alltoall")) {
            try {
                tuned(CommsConfig.defaults(Transport.IPC, 1));
                tuned(CommsConfig.defaults(Transport.UDP, 1));
            } catch (IllegalArgumentException e) {
                throw new ParameterException(cl, e.getMessage());
            }
        }
    }

    /** The comms settings of bench alltoall: the defaults with the options given. */
    private CommsConfig tuned(CommsConfig defaults) {
        CommsConfig c = defaults;
        int mtu = c.transport() == Transport.IPC ? (mtuIpc != null ? mtuIpc : c.mtuBytes())
                : (mtuUdp != null ? mtuUdp : c.mtuBytes());
        c = c.withTerm(termLength != null ? termLength : c.termLengthBytes(), mtu);
        c = idle != null ? c.withIdle(idle) : c;
        return driverThreading != null ? c.withDriverThreading(driverThreading) : c;
    }

    /** The report as pretty-printed JSON into {@code --json}, when given. */
    private void writeJson(java.util.Map<String, Object> report) throws java.io.IOException {
        if (json != null) {
            io.roundhouse.worker.train.RunFiles.writeAtomically(json,
                    new com.fasterxml.jackson.databind.ObjectMapper().writerWithDefaultPrettyPrinter()
                            .writeValueAsString(report) + "\n");
        }
    }
}
