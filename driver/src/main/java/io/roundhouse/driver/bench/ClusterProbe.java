package io.roundhouse.driver.bench;

import io.roundhouse.comms.Collectives;
import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.Backends;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.worker.config.ConfigKeys;
import io.roundhouse.worker.config.JobConfig;
import io.roundhouse.worker.model.Batch;
import io.roundhouse.worker.model.ExpertExchange;
import io.roundhouse.worker.model.Model;
import io.roundhouse.worker.model.ModelSpec;
import io.roundhouse.worker.model.MoeLayer;
import io.roundhouse.worker.model.Param;
import io.roundhouse.worker.model.ParamStore;
import io.roundhouse.worker.model.PhaseTimers;
import io.roundhouse.worker.model.StepStats;
import io.roundhouse.worker.parallel.WorkerGroup;
import io.roundhouse.worker.train.ModelKind;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * What {@code bench cluster} measures on each member of a connected group (the tasks of a barrier
 * stage, or threads in a test). Every member runs the same calls; rank 0 gathers the figures and
 * returns them, the others return null. Iteration counts are chosen by one member from a timed
 * warm-up and broadcast, so every member runs the same collectives. A time is the slowest
 * member's: a collective is done when its last member is.
 *
 * <ul>
 *   <li>{@link #links}: the point-to-point matrices, one pair at a time while the others wait:
 *   one-way latency (half the round trip of an 8-byte ping-pong) and bandwidth (a stream of
 *   {@link #P2P_BYTES} messages from one member to the other, timed until the receiver's
 *   acknowledgement); then all-to-all (flat, and in two levels when the group spans several hosts
 *   of equal size) and all-reduce at each size, as algorithm and bus bandwidth the way nccl-tests
 *   reports them: size is the bytes each member holds, algbw = size / time, busbw = algbw ·
 *   (W−1)/W for the all-to-all and · 2(W−1)/W for the all-reduce.</li>
 *   <li>{@link #layer}: one MoE layer's forward, backward and router-gradient all-reduce (the
 *   step of the experts' part of a model) on random tokens, split by phase.</li>
 * </ul>
 */
public final class ClusterProbe {
    /** The message size of the point-to-point bandwidth stream. */
    static final int P2P_BYTES = 1 << 20;

    private final Collectives c;
    private final int rank;
    private final int size;
    private final List<String> hosts;
    private final double seconds;

    /**
     * @param hosts   each member's host, in rank order
     * @param seconds time per measurement (each size of each collective, each direction of each pair)
     */
    public ClusterProbe(Collectives c, List<String> hosts, double seconds) {
        this.c = c;
        this.rank = c.member().rank();
        this.size = c.member().size();
        this.hosts = hosts;
        this.seconds = seconds;
        if (hosts.size() != size) {
            throw new IllegalArgumentException(hosts.size() + " hosts for a group of " + size);
        }
    }

    /** The point-to-point matrices and the collectives at each of {@code sizes} (bytes per member). */
    public Map<String, Object> links(List<Integer> sizes) {
        if (size < 2) {
            throw new IllegalArgumentException("links need at least two members");
        }
        double[] latency = new double[size];    // this rank's row: seconds one way, measured where this rank leads
        double[] bandwidth = new double[size];  // bytes per second from this rank
        float[] ping = new float[2];
        float[] stream = new float[P2P_BYTES / 4];
        for (int i = 0; i < size; i++) {
            for (int j = i + 1; j < size; j++) {
                c.barrier();
                double rtt = pingPong(i, j, ping);
                if (rank == i) {
                    latency[j] = rtt / 2;
                }
                double iToJ = stream(i, j, stream);
                double jToI = stream(j, i, stream);
                if (rank == i) {
                    bandwidth[j] = iToJ;
                } else if (rank == j) {
                    bandwidth[i] = jToI;
                }
            }
        }
        double[][] lat = gatherRows(latency);
        double[][] bw = gatherRows(bandwidth);
        int max = sizes.stream().mapToInt(Integer::intValue).max().orElse(0);
        float[] send = new float[Math.max(1, max / 4)];  // zeros: what they hold does not change the time
        float[] recv = new float[send.length];
        List<Map<String, Object>> collectives = new ArrayList<>();
        boolean twoLevel = twoLevelDiffers();
        for (String op : twoLevel ? List.of("alltoall", "alltoall-2level", "allreduce") : List.of("alltoall", "allreduce")) {
            for (int bytes : sizes) {
                Map<String, Object> row = collective(op, bytes, send, recv);
                if (row != null) {
                    collectives.add(row);
                }
            }
        }
        if (rank != 0) {
            return null;
        }
        // The latency matrix is symmetric by its measurement (a round trip); the leader of each pair measured it.
        for (int i = 0; i < size; i++) {
            for (int j = 0; j < i; j++) {
                lat[i][j] = lat[j][i];
            }
        }
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("workers", size);
        r.put("hosts", hosts);
        r.put("latencySeconds", lat);
        r.put("bandwidthBytesPerSecond", bw);
        r.put("p2pMessageBytes", P2P_BYTES);
        r.put("collectives", collectives);
        r.put("memcpyBytesPerSecond", memcpy(seconds));
        return r;
    }

    /** Bytes per second of a 16 MiB copy between Java arrays on this member: the baseline of the two-level all-to-all's copies. */
    static double memcpy(double seconds) {
        float[] a = new float[4 << 20];
        float[] b = new float[a.length];
        System.arraycopy(a, 0, b, 0, a.length);
        int n = 0;
        long t0 = System.nanoTime();
        long end = t0 + (long) (seconds * 1e9);
        do {
            System.arraycopy(a, 0, b, 0, a.length);
            n++;
        } while (System.nanoTime() < end || n < 3);
        return 4.0 * a.length * n / ((System.nanoTime() - t0) / 1e9);
    }

    /** Whether the group spans several hosts of equal size (where the two-level all-to-all is not the flat one). */
    private boolean twoLevelDiffers() {
        Map<String, Integer> perHost = new LinkedHashMap<>();
        hosts.forEach(h -> perHost.merge(h, 1, Integer::sum));
        return perHost.size() > 1 && perHost.values().stream().distinct().count() == 1;
    }

    /** Mean round trip of an 8-byte message between i and j, as i measured it (0 elsewhere). */
    private double pingPong(int i, int j, float[] buf) {
        Runnable trip = () -> {
            c.sendRecv(rank == i ? j : -1, buf, 0, 2, rank == j ? i : -1, buf, 0, 2);
            c.sendRecv(rank == j ? i : -1, buf, 0, 2, rank == i ? j : -1, buf, 0, 2);
        };
        long t0 = System.nanoTime();
        for (int k = 0; k < 20; k++) {
            trip.run();
        }
        double warm = (System.nanoTime() - t0) / 20e9;
        int n = agree(i, (int) Math.max(50, Math.min(20_000, seconds / 2 / Math.max(warm, 1e-7))));
        t0 = System.nanoTime();
        for (int k = 0; k < n; k++) {
            trip.run();
        }
        return rank == i ? (System.nanoTime() - t0) / 1e9 / n : 0;
    }

    /** Bytes per second of a stream of messages from s to d, as s measured it (0 elsewhere). */
    private double stream(int s, int d, float[] buf) {
        float[] ack = new float[1];
        int floats = buf.length;
        java.util.function.IntToDoubleFunction run = n -> {
            long t0 = System.nanoTime();
            for (int k = 0; k < n; k++) {
                c.sendRecv(rank == s ? d : -1, buf, 0, floats, rank == d ? s : -1, buf, 0, floats);
            }
            c.sendRecv(rank == d ? s : -1, ack, 0, 1, rank == s ? d : -1, ack, 0, 1);
            return (System.nanoTime() - t0) / 1e9;
        };
        double warm = run.applyAsDouble(2) / 2;
        int n = agree(s, (int) Math.max(4, Math.min(10_000, seconds / Math.max(warm, 1e-7))));
        double t = run.applyAsDouble(n);
        return rank == s ? (double) n * P2P_BYTES / t : 0;
    }

    /** One row of the sweep: {@code op} at {@code bytes} per member, or null where it is too small to split. */
    private Map<String, Object> collective(String op, int bytes, float[] send, float[] recv) {
        boolean allToAll = op.startsWith("alltoall");
        int floats = bytes / 4;
        int perPeer = floats / size;
        if (allToAll ? perPeer < 1 : floats < 1) {
            return null;
        }
        int[] counts = new int[size];
        java.util.Arrays.fill(counts, perPeer);
        int[] matrix = new int[size * size];
        java.util.Arrays.fill(matrix, perPeer);
        Runnable once = switch (op) {
            case "alltoall" -> () -> c.allToAllV(send, 0, counts, recv, 0, counts);
            case "alltoall-2level" -> () -> c.allToAllV2D(send, 0, recv, 0, matrix);
            case "allreduce" -> () -> c.allReduceSum(send, 0, floats);
            default -> throw new IllegalArgumentException(op);
        };
        long t0 = System.nanoTime();
        once.run();
        double warm = (System.nanoTime() - t0) / 1e9;
        int n = agree(0, (int) Math.max(3, Math.min(10_000, seconds / Math.max(warm, 1e-7))));
        c.barrier();
        t0 = System.nanoTime();
        for (int k = 0; k < n; k++) {
            once.run();
        }
        double time = slowest((System.nanoTime() - t0) / 1e9 / n);
        if (rank != 0) {
            return null;
        }
        long sizeBytes = allToAll ? 4L * perPeer * size : 4L * floats;
        double algbw = sizeBytes / time;
        double factor = allToAll ? (size - 1.0) / size : 2.0 * (size - 1) / size;
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("op", op);
        row.put("bytes", sizeBytes);
        row.put("iterations", n);
        row.put("seconds", time);
        row.put("algbwBytesPerSecond", algbw);
        row.put("busbwBytesPerSecond", algbw * factor);
        return row;
    }

    /**
     * One MoE layer of {@code job}'s shape on {@code tokens} random tokens per member: forward,
     * backward, and the all-reduce of the router's gradient, repeated; the mean step and its
     * phases. {@code scaling} names the series ("strong" or "weak") in the result.
     */
    public Map<String, Object> layer(JobConfig job, int tokens, String scaling) {
        ModelSpec spec = ModelSpec.from(job, 1, 1);
        try (Backend be = Backends.create(job.get(ConfigKeys.BACKEND))) {
            ParamStore ps = new ParamStore(be, job.get(ConfigKeys.TRAIN_SEED));
            WorkerGroup group = size == 1 ? WorkerGroup.single(spec.experts()) : WorkerGroup.of(c, spec.experts());
            ExpertExchange exchange = group.exchange(be, spec.dim(), tokens * spec.topK());
            MoeLayer moe = new MoeLayer(be, ps, "moe", spec, exchange, tokens, false);
            PhaseTimers timers = new PhaseTimers();
            moe.setTimers(timers);
            Random rnd = new Random(1000L + rank);
            Tensor x = be.allocate("x", DType.FLOAT32, tokens, spec.dim());
            Tensor dy = be.allocate("dy", DType.FLOAT32, tokens, spec.dim());
            be.write(x, gaussian(rnd, tokens * spec.dim()));
            be.write(dy, gaussian(rnd, tokens * spec.dim()));
            int capacity = spec.capacity(tokens);
            Runnable step = () -> {
                moe.forward(x, capacity);
                long named = timers.total();
                long b0 = System.nanoTime();
                moe.backward(dy);
                timers.add(PhaseTimers.Phase.BACKWARD, System.nanoTime() - b0 - (timers.total() - named));
                long a0 = System.nanoTime();
                if (size > 1) {
                    float[] routerGrad = ps.readGrad(moe.routerWeights());
                    c.allReduceSum(routerGrad, 0, routerGrad.length);
                }
                timers.add(PhaseTimers.Phase.ALL_REDUCE, System.nanoTime() - a0);
            };
            // Warm-up (the JIT, the exchange's buffers): 3 steps, then as many more as fill a second or a
            // third of the time, whichever is longer (measured: a shorter one left W = 1's first stage 60% slow).
            long t0 = System.nanoTime();
            for (int k = 0; k < 3; k++) {
                step.run();
            }
            double warm = (System.nanoTime() - t0) / 3e9;
            int more = agree(0, (int) Math.min(1000, Math.max(1.0, seconds / 3) / Math.max(warm, 1e-7)));
            t0 = System.nanoTime();
            for (int k = 0; k < more; k++) {
                step.run();
            }
            warm = more == 0 ? warm : (System.nanoTime() - t0) / 1e9 / more;
            int n = agree(0, (int) Math.max(5, Math.min(2000, seconds / Math.max(warm, 1e-7))));
            if (size > 1) {
                c.barrier();
            }
            timers.reset();
            t0 = System.nanoTime();
            for (int k = 0; k < n; k++) {
                step.run();
            }
            double stepSeconds = (System.nanoTime() - t0) / 1e9 / n;
            PhaseTimers.Phase[] phases = PhaseTimers.Phase.values();
            float[] mine = new float[1 + phases.length];
            mine[0] = (float) stepSeconds;
            for (int p = 0; p < phases.length; p++) {
                mine[1 + p] = (float) (timers.nanos(phases[p]) / 1e9 / n);
            }
            float[] all = new float[mine.length * size];
            if (size > 1) {
                c.gather(0, mine, 0, mine.length, all, 0);
            } else {
                all = mine;
            }
            if (rank != 0) {
                return null;
            }
            double slowest = 0;
            Map<String, Double> phaseMs = new LinkedHashMap<>();
            for (int r = 0; r < size; r++) {
                slowest = Math.max(slowest, all[r * mine.length]);
            }
            double comm = 0;
            for (int p = 0; p < phases.length; p++) {
                double mean = 0;
                for (int r = 0; r < size; r++) {
                    mean += all[r * mine.length + 1 + p] / size;
                }
                if (mean > 0) {
                    phaseMs.put(phases[p].name().toLowerCase(java.util.Locale.ROOT), mean * 1e3);
                }
                if (phases[p] == PhaseTimers.Phase.DISPATCH || phases[p] == PhaseTimers.Phase.COMBINE
                        || phases[p] == PhaseTimers.Phase.ALL_REDUCE) {
                    comm += mean;
                }
            }
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("scaling", scaling);
            r.put("workers", size);
            r.put("hosts", new java.util.TreeSet<>(hosts).size());
            r.put("tokensPerWorker", tokens);
            r.put("iterations", n);
            r.put("stepSeconds", slowest);
            r.put("tokensPerSecond", (double) tokens * size / slowest);
            r.put("commShare", comm / slowest);
            r.put("phaseMs", phaseMs);
            return r;
        }
    }

    /**
     * The whole model of {@code job} on one member, on random inputs of {@code examples} examples:
     * forward and backward (no optimizer) at W = 1, for the cost model's compute term; and what
     * the model exchanges (its MoE layers, dense parameters, expert parameters).
     */
    public static Map<String, Object> model(JobConfig job, int examples, double seconds) {
        ModelKind kind = ModelKind.of(job);
        boolean lm = kind == ModelKind.LANGUAGE_MODEL;
        // The byte tokenizer's vocabulary; the classifier's 28×28 images in 10 classes.
        Map<String, String> shape = lm ? Map.of("vocabulary", "256") : Map.of("inputs", "784", "classes", "10");
        try (Backend be = Backends.create(job.get(ConfigKeys.BACKEND))) {
            Model model = kind.build(job, be, shape, job.get(ConfigKeys.TRAIN_SEED), examples,
                    ModelKind.Exchanges.local(job.get(ConfigKeys.MODEL_EXPERTS)));
            int rows = examples * model.tokensPerExample();
            Random rnd = new Random(7);
            Tensor inputs;
            Tensor targets;
            int[] hostTargets = new int[lm ? rows : examples];
            if (lm) {
                inputs = be.allocate("inputs", DType.INT32, rows);
                targets = be.allocate("targets", DType.INT32, rows);
                be.write(inputs, rnd.ints(rows, 0, 256).toArray());
                hostTargets = rnd.ints(rows, 0, 256).toArray();
            } else {
                inputs = be.allocate("inputs", DType.FLOAT32, examples, 784);
                targets = be.allocate("targets", DType.INT32, examples);
                be.write(inputs, gaussian(rnd, examples * 784));
                hostTargets = rnd.ints(examples, 0, 10).toArray();
            }
            be.write(targets, hostTargets);
            int[] labels = hostTargets;
            Batch batch = new Batch() {
                public Tensor inputs() {
                    return inputs;
                }

                public Tensor targets() {
                    return targets;
                }

                public int[] hostTargets() {
                    return labels;
                }
            };
            StepStats stats = new StepStats(model.moeLayers(), job.get(ConfigKeys.MODEL_EXPERTS));
            long[] step = {0};
            Runnable once = () -> {
                model.forward(batch, examples, true, 1, step[0]++, 0, stats);
                model.backward(examples);
            };
            long t0 = System.nanoTime();
            once.run();
            double warm = (System.nanoTime() - t0) / 1e9;
            int n = (int) Math.max(3, Math.min(200, seconds / Math.max(warm, 1e-7)));
            t0 = System.nanoTime();
            for (int k = 0; k < n; k++) {
                once.run();
            }
            long dense = 0;
            long expert = 0;
            for (Param p : model.params().trainable()) {
                if (p.expert()) {
                    expert += p.value().size();
                } else {
                    dense += p.value().size();
                }
            }
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("kind", kind.configName());
            r.put("examplesPerStep", examples);
            r.put("tokensPerStep", examples * model.routedRowsPerExample());  // the rows the MoE layers route
            r.put("moeLayers", model.moeLayers());
            r.put("denseParameters", dense);
            r.put("expertParameters", expert);
            r.put("dim", job.get(ConfigKeys.MODEL_DIM));
            r.put("topK", job.get(ConfigKeys.MODEL_TOP_K));
            r.put("experts", job.get(ConfigKeys.MODEL_EXPERTS));
            r.put("iterations", n);
            r.put("computeSeconds", (System.nanoTime() - t0) / 1e9 / n);
            return r;
        }
    }

    private static float[] gaussian(Random rnd, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) rnd.nextGaussian();
        }
        return v;
    }

    /** {@code root}'s value of n, on every member. */
    private int agree(int root, int n) {
        if (size == 1) {
            return n;
        }
        float[] v = {n};
        c.broadcast(root, v, 0, 1);
        return (int) v[0];
    }

    /** The largest of every member's value, at rank 0 (its own value elsewhere). */
    private double slowest(double mine) {
        float[] all = new float[size];
        c.gather(0, new float[] {(float) mine}, 0, 1, all, 0);
        double max = mine;
        for (float v : all) {
            max = Math.max(max, v);
        }
        return max;
    }

    /** Each member's row, at rank 0 (null elsewhere). */
    private double[][] gatherRows(double[] row) {
        float[] mine = new float[size];
        for (int j = 0; j < size; j++) {
            mine[j] = (float) row[j];
        }
        float[] all = new float[size * size];
        c.gather(0, mine, 0, size, all, 0);
        if (rank != 0) {
            return null;
        }
        double[][] m = new double[size][size];
        for (int i = 0; i < size; i++) {
            for (int j = 0; j < size; j++) {
                m[i][j] = all[i * size + j];
            }
        }
        return m;
    }
}
