package io.roundhouse.worker.parallel;

import java.util.Arrays;

/**
 * Which worker hosts which experts. With E ≥ W each worker hosts a contiguous block of experts,
 * the first {@code E mod W} workers one more (6 experts on 4 workers: 2, 2, 1, 1). With W > E
 * every expert is hosted by {@code W / E} or {@code W / E + 1} workers (replicas), worker w
 * hosting expert {@code w mod E}; replicas all-reduce their expert gradients, so they stay equal.
 *
 * <p>Where a worker sends its copies for expert e ({@link #destination}): to itself when it hosts
 * e, otherwise to replica {@code s mod R} of e's R hosts (in rank order), which spreads the
 * sources over the replicas.
 */
public final class ExpertPlacement {
    private final int experts;
    private final int workers;
    private final int[] first;   // [W] first hosted expert
    private final int[] count;   // [W] hosted experts
    private final int[][] hosts; // [E] the workers hosting each expert, in rank order

    public ExpertPlacement(int experts, int workers) {
        if (experts < 1 || workers < 1) {
            throw new IllegalArgumentException("placement needs at least one expert and one worker, got E=" + experts
                    + " W=" + workers);
        }
        this.experts = experts;
        this.workers = workers;
        this.first = new int[workers];
        this.count = new int[workers];
        if (experts >= workers) {
            int base = experts / workers;
            int extra = experts % workers;
            int at = 0;
            for (int w = 0; w < workers; w++) {
                first[w] = at;
                count[w] = base + (w < extra ? 1 : 0);
                at += count[w];
            }
        } else {
            for (int w = 0; w < workers; w++) {
                first[w] = w % experts;
                count[w] = 1;
            }
        }
        this.hosts = new int[experts][];
        for (int e = 0; e < experts; e++) {
            int expert = e;
            hosts[e] = java.util.stream.IntStream.range(0, workers)
                    .filter(w -> expert >= first[w] && expert < first[w] + count[w]).toArray();
        }
    }

    public int experts() {
        return experts;
    }

    public int workers() {
        return workers;
    }

    public int firstExpert(int worker) {
        return first[worker];
    }

    public int expertCount(int worker) {
        return count[worker];
    }

    /** Whether some expert lives on more than one worker (W > E). */
    public boolean replicated() {
        return workers > experts;
    }

    /** The workers hosting {@code expert}, in rank order. */
    public int[] hosts(int expert) {
        return hosts[expert].clone();
    }

    /** The worker that computes {@code expert} for the copies routed on worker {@code source}. */
    public int destination(int source, int expert) {
        if (expert >= first[source] && expert < first[source] + count[source]) {
            return source;
        }
        int[] h = hosts[expert];  // every step: computed once
        return h[source % h.length];
    }

    /** One line per worker, e.g. "worker 1: experts 2-3". */
    public String describe() {
        StringBuilder sb = new StringBuilder("expert placement: E=" + experts + " over W=" + workers
                + (replicated() ? " (replicated)" : "") + "\n");
        for (int w = 0; w < workers; w++) {
            sb.append("  worker ").append(w).append(": expert").append(count[w] == 1 ? " " + first[w]
                    : "s " + first[w] + "-" + (first[w] + count[w] - 1)).append('\n');
        }
        return sb.toString();
    }

    @Override
    public String toString() {
        return "ExpertPlacement[E=" + experts + ", W=" + workers + ", first=" + Arrays.toString(first) + ", count="
                + Arrays.toString(count) + "]";
    }
}
