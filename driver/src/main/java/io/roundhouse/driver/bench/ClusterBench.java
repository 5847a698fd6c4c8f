package io.roundhouse.driver.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.roundhouse.driver.spark.ClusterStage;
import io.roundhouse.driver.spark.SparkJob;
import io.roundhouse.worker.config.ConfigException;
import io.roundhouse.worker.config.ConfigKeys;
import io.roundhouse.worker.config.JobConfig;
import io.roundhouse.worker.train.ModelKind;
import io.roundhouse.worker.train.RunFiles;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeSet;
import org.apache.spark.SparkContext;
import org.apache.spark.sql.SparkSession;

/**
 * {@code roundhouse bench cluster}: measures the cluster Spark gives it (spark-submit's master, or
 * an embedded {@code local[W]}) as barrier stages on its executors: the point-to-point latency and
 * bandwidth matrix, all-to-all and all-reduce bandwidth by size (nccl-tests' algorithm and bus
 * bandwidth), and one MoE layer's step at W = 1…N under weak and strong scaling, split by phase;
 * then fits an α–β {@link CostModel} to the links, checks it against the measured collectives,
 * and predicts the configured model's step at W = 8…256. Writes {@code results.json},
 * {@code report.md} and {@code report.html} (charts) into its folder.
 */
final class ClusterBench {
    /** The worker counts the model's step is predicted at. */
    static final int[] PREDICTED = {8, 16, 32, 64, 128, 256};

    private final JobConfig config;
    private final List<Integer> scaling;
    private final List<Integer> sizes;
    private final double seconds;
    private final Path out;

    /**
     * @param scaling the worker counts of the layer's scaling stages; the largest also runs the links
     * @param sizes   the collectives' sizes, bytes per worker
     */
    ClusterBench(JobConfig config, List<Integer> scaling, List<Integer> sizes, double seconds, Path out) {
        this.config = config;
        this.scaling = scaling;
        this.sizes = sizes;
        this.seconds = seconds;
        this.out = out;
    }

    /** Sizes from 4 KiB up to {@code max} bytes, a factor of 4 apart. */
    static List<Integer> sizesUpTo(int max) {
        List<Integer> s = new ArrayList<>();
        for (long b = 4096; b <= max; b *= 4) {
            s.add((int) b);
        }
        return s;
    }

    /** Tokens per worker of one training step of the config: the layer's weak-scaling load. */
    static int tokens(JobConfig c) {
        int batch = c.get(ConfigKeys.TRAIN_BATCH_SIZE);
        return ModelKind.of(c) == ModelKind.LANGUAGE_MODEL ? batch * c.get(ConfigKeys.DATA_SEQ_LEN) : batch;
    }

    Map<String, Object> run(PrintWriter console) throws IOException {
        int w = scaling.stream().mapToInt(Integer::intValue).max().orElseThrow();
        long started = System.nanoTime();
        ObjectMapper json = new ObjectMapper();
        try {  // before any measuring: a folder that cannot be made fails now
            java.nio.file.Files.createDirectories(out);
        } catch (IOException e) {
            throw new io.roundhouse.worker.UserException(io.roundhouse.worker.UserException.USAGE, "bench cluster "
                    + "cannot make its folder " + out + " (" + e + "); choose another with --out");
        }
        SparkSession spark = SparkJob.session("roundhouse-bench-cluster", w);
        Map<String, Object> results = new LinkedHashMap<>();
        try {
            SparkContext sc = spark.sparkContext();
            if (sc.isLocal() && sc.defaultParallelism() < w) {
                throw new ConfigException("bench cluster needs " + w + " task slots, but " + sc.master() + " has "
                        + sc.defaultParallelism() + "; measure fewer workers (--workers) or give Spark more cores");
            }
            console.printf(Locale.ROOT, "bench cluster: up to %d workers on %s (application %s), comms.transport %s, "
                    + "%s all-to-all; %.2f s per measurement%n", w, sc.master(), sc.applicationId(),
                    config.get(ConfigKeys.COMMS_TRANSPORT), config.get(ConfigKeys.COMMS_ALL_TO_ALL), seconds);
            console.flush();
            results.put("master", sc.master());
            results.put("transport", config.get(ConfigKeys.COMMS_TRANSPORT));
            results.put("allToAll", config.get(ConfigKeys.COMMS_ALL_TO_ALL));
            results.put("secondsPerMeasurement", seconds);
            JsonNode links = null;
            if (w >= 2) {
                links = json.readTree(ClusterStage.links(sc, config, w, sizes, seconds));
                results.put("links", links);
                printLinks(console, links);
            }
            List<JsonNode> layers = new ArrayList<>();
            JsonNode model = null;
            int tokens = tokens(config);
            int examples = config.get(ConfigKeys.TRAIN_BATCH_SIZE);
            for (int k : scaling) {
                JsonNode stage = json.readTree(ClusterStage.layer(sc, config, k, tokens, tokens, examples, seconds));
                stage.path("layers").forEach(layers::add);
                if (stage.has("model")) {
                    model = stage.get("model");
                }
                for (JsonNode l : stage.path("layers")) {
                    console.printf(Locale.ROOT, "layer %-6s W=%-3d hosts %d  %6d tokens/worker  step %8.2f ms  "
                                    + "%,10.0f tok/s  comm %4.1f%%%n", l.path("scaling").asText(), l.path("workers").asInt(),
                            l.path("hosts").asInt(), l.path("tokensPerWorker").asInt(),
                            l.path("stepSeconds").asDouble() * 1e3, l.path("tokensPerSecond").asDouble(),
                            100 * l.path("commShare").asDouble());
                }
                console.flush();
            }
            results.put("layers", layers);
            if (model != null) {
                results.put("model", model);
            }
            if (links != null) {
                results.put("costModel", costModel(links, layers, model, console));
            }
        } finally {
            spark.stop();
        }
        results.put("wallSeconds", (System.nanoTime() - started) / 1e9);
        Path jsonFile = out.resolve("results.json");
        RunFiles.writeAtomically(jsonFile, json.writerWithDefaultPrettyPrinter().writeValueAsString(results) + "\n");
        JsonNode all = json.readTree(jsonFile.toFile());
        RunFiles.writeAtomically(out.resolve("report.md"), ClusterReport.markdown(all));
        RunFiles.writeAtomically(out.resolve("report.html"), ClusterReport.html(all));
        console.printf("bench cluster: %s, report.md and report.html in %s%n", jsonFile.getFileName(), out);
        console.flush();
        return results;
    }

    private static void printLinks(PrintWriter console, JsonNode links) {
        int w = links.path("workers").asInt();
        console.printf("hosts by rank: %s%n", links.path("hosts"));
        console.println("one-way latency (us) and bandwidth (MB/s), row: from, column: to");
        for (int i = 0; i < w; i++) {
            StringBuilder sb = new StringBuilder(String.format(Locale.ROOT, "  %2d ", i));
            for (int j = 0; j < w; j++) {
                sb.append(i == j ? "         -         " : String.format(Locale.ROOT, " %7.1f/%-9.1f",
                        links.path("latencySeconds").path(i).path(j).asDouble() * 1e6,
                        links.path("bandwidthBytesPerSecond").path(i).path(j).asDouble() / 1e6));
            }
            console.println(sb);
        }
        console.printf(Locale.ROOT, "%-16s %10s %11s %12s %12s%n", "collective", "bytes", "time us", "algbw GB/s",
                "busbw GB/s");
        for (JsonNode c : links.path("collectives")) {
            console.printf(Locale.ROOT, "%-16s %10d %11.1f %12.4f %12.4f%n", c.path("op").asText(), c.path("bytes").asLong(),
                    c.path("seconds").asDouble() * 1e6, c.path("algbwBytesPerSecond").asDouble() / 1e9,
                    c.path("busbwBytesPerSecond").asDouble() / 1e9);
        }
        console.printf(Locale.ROOT, "memcpy on rank 0: %.2f GB/s%n", links.path("memcpyBytesPerSecond").asDouble() / 1e9);
        console.flush();
    }

    /**
     * The α–β model fitted to the links; its collectives beside the measured ones; the layer's
     * measured steps beside the model's; the configured model's predicted step at W = 8…256.
     */
    private Map<String, Object> costModel(JsonNode links, List<JsonNode> layers, JsonNode model, PrintWriter console) {
        int w = links.path("workers").asInt();
        List<String> hosts = new ArrayList<>();
        links.path("hosts").forEach(h -> hosts.add(h.asText()));
        CostModel cm = CostModel.fit(matrix(links.path("latencySeconds"), w),
                matrix(links.path("bandwidthBytesPerSecond"), w), hosts, links.path("memcpyBytesPerSecond").asDouble());
        int hostCount = new TreeSet<>(hosts).size();
        int g = w % hostCount == 0 ? w / hostCount : 1;
        Map<String, Object> r = new LinkedHashMap<>();
        CostModel.Links l = cm.links();
        r.put("links", l);
        r.put("workersPerHost", g);
        if (hostCount == 1) {
            r.put("note", "one host measured: the inter-host link is taken as the intra-host one");
        }
        console.printf(Locale.ROOT, "alpha-beta fit: intra-host %.1f us + %.1f MB/s, inter-host %.1f us + %.1f MB/s, "
                        + "memcpy %.2f GB/s (%d host%s, %d workers each)%n", l.alphaIntra() * 1e6, 1e-6 / l.betaIntra(),
                l.alphaInter() * 1e6, 1e-6 / l.betaInter(), 1e-9 / l.gamma(), hostCount, hostCount == 1 ? "" : "s", g);
        List<Map<String, Object>> checks = new ArrayList<>();
        for (JsonNode c : links.path("collectives")) {
            String op = c.path("op").asText();
            double m = c.path("bytes").asDouble();
            double predicted = switch (op) {
                case "alltoall" -> cm.allToAllFlat(w, g, m);
                case "alltoall-2level" -> cm.allToAllTwoLevel(w, g, m);
                default -> cm.allReduce(w, g, m);
            };
            Map<String, Object> row = new LinkedHashMap<>();
            row.put("op", op);
            row.put("bytes", (long) m);
            row.put("measuredSeconds", c.path("seconds").asDouble());
            row.put("modelSeconds", predicted);
            checks.add(row);
        }
        r.put("collectives", checks);
        // The layer alone as a workload: its compute at W = 1, one MoE layer, the router as its dense part.
        JsonNode one = layers.stream().filter(x -> x.path("workers").asInt() == 1 && x.path("scaling").asText()
                .equals("weak")).findFirst().orElse(null);
        boolean twoLevel = config.get(ConfigKeys.COMMS_ALL_TO_ALL).equals("hierarchical");
        if (one != null) {
            double compute = one.path("stepSeconds").asDouble();
            int d = config.get(ConfigKeys.MODEL_DIM);
            int e = config.get(ConfigKeys.MODEL_EXPERTS);
            int k = config.get(ConfigKeys.MODEL_TOP_K);
            List<Map<String, Object>> layerChecks = new ArrayList<>();
            for (JsonNode x : layers) {
                int wx = x.path("workers").asInt();
                int gx = x.path("hosts").asInt() > 0 && wx % x.path("hosts").asInt() == 0 ? wx / x.path("hosts").asInt() : 1;
                int n = x.path("tokensPerWorker").asInt();
                // compute scales with the tokens each worker routes
                CostModel.Workload work = new CostModel.Workload(compute * n / one.path("tokensPerWorker").asDouble(),
                        n, 1, d, k, e, (long) d * e);
                CostModel.Step s = cm.step(work, wx, gx, twoLevel);
                Map<String, Object> row = new LinkedHashMap<>();
                row.put("scaling", x.path("scaling").asText());
                row.put("workers", wx);
                row.put("measuredSeconds", x.path("stepSeconds").asDouble());
                row.put("modelSeconds", s.seconds());
                row.put("measuredCommShare", x.path("commShare").asDouble());
                row.put("modelCommShare", s.commShare());
                layerChecks.add(row);
            }
            r.put("layers", layerChecks);
        }
        if (model != null) {
            CostModel.Workload work = new CostModel.Workload(model.path("computeSeconds").asDouble(),
                    model.path("tokensPerStep").asInt(), model.path("moeLayers").asInt(), model.path("dim").asInt(),
                    model.path("topK").asInt(), model.path("experts").asInt(), model.path("denseParameters").asLong());
            Map<String, Object> predictions = new LinkedHashMap<>();
            for (boolean two : new boolean[] {false, true}) {
                List<Map<String, Object>> rows = new ArrayList<>();
                for (CostModel.Step s : cm.steps(work, PREDICTED, g, two)) {
                    Map<String, Object> row = new LinkedHashMap<>();
                    row.put("workers", s.workers());
                    row.put("stepSeconds", s.seconds());
                    row.put("computeSeconds", s.computeSeconds());
                    row.put("allToAllSeconds", s.allToAllSeconds());
                    row.put("allReduceSeconds", s.allReduceSeconds());
                    row.put("commShare", s.commShare());
                    rows.add(row);
                    console.printf(Locale.ROOT, "predicted %-9s W=%-4d step %9.2f ms  (compute %.2f, all-to-all %.2f, "
                                    + "all-reduce %.2f)  comm %4.1f%%%n", two ? "two-level" : "flat", s.workers(),
                            s.seconds() * 1e3, s.computeSeconds() * 1e3, s.allToAllSeconds() * 1e3,
                            s.allReduceSeconds() * 1e3, 100 * s.commShare());
                }
                predictions.put(two ? "twoLevel" : "flat", rows);
            }
            r.put("predictions", predictions);
        }
        console.flush();
        return r;
    }

    private static double[][] matrix(JsonNode m, int w) {
        double[][] a = new double[w][w];
        for (int i = 0; i < w; i++) {
            for (int j = 0; j < w; j++) {
                a[i][j] = m.path(i).path(j).asDouble();
            }
        }
        return a;
    }
}
