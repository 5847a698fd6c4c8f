package io.roundhouse.driver.spark;

import io.roundhouse.comms.CommsConfig;
import io.roundhouse.driver.JobComms;
import io.roundhouse.driver.RoundhouseCli;
import io.roundhouse.driver.bench.ClusterProbe;
import io.roundhouse.worker.config.JobConfig;
import io.roundhouse.worker.train.MetricsWriter;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;
import org.apache.spark.BarrierTaskContext;
import org.apache.spark.SparkContext;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.rdd.RDD;
import scala.collection.Iterator;
import scala.jdk.javaapi.CollectionConverters;
import scala.reflect.ClassTag;
import scala.reflect.ClassTag$;
import scala.runtime.AbstractFunction1;

/**
 * One barrier stage of {@code bench cluster}: its tasks join as a comms group over the job's
 * transport (as training's workers do) and run a {@link ClusterProbe}; rank 0 returns the figures
 * as JSON. {@code links} measures the point-to-point matrices and the collectives; {@code layer}
 * one MoE layer at this stage's W under weak and strong scaling, and at W = 1 also the whole model.
 */
public final class ClusterStage extends AbstractFunction1<Iterator<Integer>, Iterator<String>> implements Serializable {
    private static final long serialVersionUID = 1L;

    private final Map<String, String> config;
    private final long token;
    private final String appKey;
    private final String what;
    private final List<Integer> sizes;
    private final double seconds;
    private final int tokensPerWorker;
    private final int globalTokens;
    private final int examples;

    private ClusterStage(Map<String, String> config, long token, String appKey, String what, List<Integer> sizes,
                         double seconds, int tokensPerWorker, int globalTokens, int examples) {
        this.config = new LinkedHashMap<>(config);
        this.token = token;
        this.appKey = appKey;
        this.what = what;
        this.sizes = new ArrayList<>(sizes);
        this.seconds = seconds;
        this.tokensPerWorker = tokensPerWorker;
        this.globalTokens = globalTokens;
        this.examples = examples;
    }

    /** Point-to-point matrices and collectives at {@code sizes} over {@code tasks} workers: rank 0's JSON. */
    public static String links(SparkContext sc, JobConfig config, int tasks, List<Integer> sizes, double seconds) {
        return run(sc, tasks, new ClusterStage(config.asMap(), CommsConfig.randomSessionToken(), appKey(sc), "links",
                sizes, seconds, 0, 0, 0));
    }

    /**
     * One MoE layer over {@code tasks} workers, with {@code tokensPerWorker} tokens each (weak
     * scaling) and {@code globalTokens} split over them (strong); with one task also the whole
     * model at {@code examples} examples: rank 0's JSON.
     */
    public static String layer(SparkContext sc, JobConfig config, int tasks, int tokensPerWorker, int globalTokens,
                               int examples, double seconds) {
        return run(sc, tasks, new ClusterStage(config.asMap(), CommsConfig.randomSessionToken(), appKey(sc), "layer",
                List.of(), seconds, tokensPerWorker, globalTokens, examples));
    }

    private static String appKey(SparkContext sc) {
        return "bench-" + sc.applicationId().replaceAll("[^A-Za-z0-9._-]", "_");
    }

    /**
     * Runs the stage once (a failed measurement is reported, not retried: a retry would measure a
     * different cluster state); a failure is the failed worker's own error (e.g. the peer it lost).
     */
    private static String run(SparkContext sc, int tasks, ClusterStage stage) {
        ClassTag<String> strings = ClassTag$.MODULE$.apply(String.class);
        String group = "roundhouse-" + stage.appKey + "-" + stage.token;
        TaskFailures failures = new TaskFailures(sc, group);
        sc.addSparkListener(failures);
        sc.setJobGroup(group, "roundhouse bench cluster: " + stage.what + " over " + tasks, false);
        try {
            RDD<Integer> ranks = new JavaSparkContext(sc).parallelize(IntStream.range(0, tasks).boxed().toList(), tasks)
                    .rdd();
            List<String> results = ranks.barrier().mapPartitions(stage, false, strings).toJavaRDD().collect();
            return results.stream().filter(r -> !r.isEmpty()).findFirst()
                    .orElseThrow(() -> new IllegalStateException("bench cluster: rank 0 returned no figures"));
        } catch (Exception e) {  // collect() throws SparkException, a checked exception, unchecked
            throw failures.explain(e);
        } finally {
            sc.clearJobGroup();
            sc.removeSparkListener(failures);
        }
    }

    @Override
    public Iterator<String> apply(Iterator<Integer> partition) {
        BarrierTaskContext ctx = BarrierTaskContext.get();
        JobConfig job = JobConfig.of(config);
        CommsConfig cfg = JobComms.config(job, token);
        try (BarrierGroup group = BarrierGroup.join(ctx, cfg, appKey)) {
            ClusterProbe probe = new ClusterProbe(group.collectives(), group.hosts, seconds);
            Map<String, Object> r;
            if (what.equals("links")) {
                r = probe.links(sizes);
            } else {
                Map<String, Object> weak = probe.layer(job, tokensPerWorker, "weak");
                Map<String, Object> strong = probe.layer(job, Math.max(1, globalTokens / group.workers), "strong");
                r = group.rank == 0 ? new LinkedHashMap<>() : null;
                if (r != null) {
                    r.put("layers", List.of(weak, strong));
                    if (group.workers == 1) {
                        r.put("model", ClusterProbe.model(job, examples, seconds));
                    }
                }
            }
            String out = r == null ? "" : MetricsWriter.toJson(r);
            return CollectionConverters.asScala(List.of(out).iterator());
        } catch (RuntimeException e) {
            if (RoundhouseCli.isUserError(e)) {
                for (Throwable t = e; t != null; t = t.getCause()) {
                    t.setStackTrace(new StackTraceElement[0]);
                }
            }
            throw e;
        }
    }
}
