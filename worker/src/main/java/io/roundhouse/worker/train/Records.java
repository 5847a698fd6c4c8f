package io.roundhouse.worker.train;

import io.roundhouse.worker.model.StepStats;
import io.roundhouse.worker.parallel.WorkerGroup;
import java.util.LinkedHashMap;
import java.util.Map;

/** The run's records (metrics.jsonl lines) and the progress line's running averages. */
final class Records {
    private Records() {
    }

    static Map<String, Object> placement(WorkerGroup group) {
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("type", "placement");
        r.put("workers", group.size());
        r.put("experts", group.placement().experts());
        int[][] hosted = new int[group.size()][];
        for (int w = 0; w < group.size(); w++) {
            int f = group.placement().firstExpert(w);
            hosted[w] = java.util.stream.IntStream.range(f, f + group.placement().expertCount(w)).toArray();
        }
        r.put("expertsByWorker", hosted);
        r.put("endpointByWorker", group.endpoints());
        return r;
    }

    /**
     * MoE layer {@code b}'s balance in a step's global statistics, into {@code out} (a caller's
     * array: nothing allocated): {@code loadMaxOverMean} (the busiest expert's kept copies over the
     * mean: 1 is perfect balance), {@code droppedPercent} (of the layer's copies), {@code entropy}
     * (the router's mean entropy per token, nats; ln E is uniform) and {@code expertsPerToken} (kept
     * copies per token: K for top-k without drops, falling as a dense-to-sparse router's temperature
     * does, around cf·K for expert choice).
     */
    static void balance(StepStats s, int b, double[] out) {
        long kept = 0;
        int max = 0;
        for (int v : s.expertLoad[b]) {
            kept += v;
            max = Math.max(max, v);
        }
        double mean = (double) kept / s.expertLoad[b].length;
        long copies = kept + s.droppedByLayer[b];
        out[0] = kept == 0 ? 0 : max / mean;
        out[1] = copies == 0 ? 0 : 100.0 * s.droppedByLayer[b] / copies;
        out[2] = s.routedRows == 0 ? 0 : s.routerEntropy[b] / s.routedRows;
        out[3] = s.routedRows == 0 ? 0 : (double) kept / s.routedRows;
    }

    static Map<String, Object> eval(String split, int step, int epoch, double[] v,
                                    io.roundhouse.worker.model.Objective objective) {
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("type", "eval");
        r.put("split", split);
        r.put("step", step);
        if (epoch >= 0) {
            r.put("epoch", epoch + 1);
        }
        r.put("crossEntropy", v[0]);
        if (objective == io.roundhouse.worker.model.Objective.ACCURACY) {
            r.put("accuracy", v[1]);
        } else {
            r.put("bitsPerByte", objective.value(v[0], v[1]));
        }
        return r;
    }

    /** The run's summary record. */
    static Map<String, Object> summary(Trainer.Result r, long parameters, int workers, boolean stoppedEarly,
                                       String backend) {
        Map<String, Object> summary = new LinkedHashMap<>();
        summary.put("steps", r.steps());
        summary.put("wallSeconds", r.wallSeconds());
        summary.put("tokensPerSecond", r.tokensPerSecond());
        if (!Double.isNaN(r.testAccuracy())) {  // a language model reports bits per byte instead
            summary.put("validationAccuracy", r.validationAccuracy());
            summary.put("testAccuracy", r.testAccuracy());
        }
        summary.put("testLoss", r.testLoss());
        if (!Double.isNaN(r.bitsPerByte())) {
            summary.put("bitsPerByte", r.bitsPerByte());
        }
        summary.put("parameters", parameters);
        summary.put("workers", workers);
        summary.put("stoppedEarly", stoppedEarly);
        summary.put("backend", backend);
        summary.put("parameterDigest", r.parameterDigest());
        return summary;
    }

    /** {@code name=value} pairs with 4 significant digits, for progress lines. */
    static String brief(Map<String, Object> values) {
        StringBuilder sb = new StringBuilder();
        values.forEach((k, v) -> sb.append(sb.length() == 0 ? "" : " ").append(k).append('=')
                .append(String.format(java.util.Locale.ROOT, "%.4g", ((Number) v).doubleValue())));
        return sb.toString();
    }

    /** Averages over the steps since the last progress line. */
    static final class Window {
        double loss;
        double crossEntropy;
        long correct;
        long tokens;
        long routed;
        long dropped;
        double seconds;

        void add(StepStats s, double sec) {
            loss += s.totalLoss() * s.tokens;
            crossEntropy += s.crossEntropy * s.tokens;
            correct += s.correct;
            tokens += s.tokens;
            routed += s.routedRows;
            dropped += s.droppedCopies;
            seconds += sec;
        }

        /** Mean loss per prediction (cross-entropy plus router losses). */
        double loss() {
            return loss / tokens;
        }

        double crossEntropy() {
            return crossEntropy / tokens;
        }

        double accuracy() {
            return correct / (double) tokens;
        }

        double droppedFraction(int k) {
            return dropped / (double) (routed * k);
        }

        double tokensPerSecond() {
            return tokens / seconds;
        }

        void reset() {
            loss = 0;
            crossEntropy = 0;
            correct = 0;
            tokens = 0;
            routed = 0;
            dropped = 0;
            seconds = 0;
        }
    }
}
