package io.roundhouse.driver.bench;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * An α–β cost model of Roundhouse's collectives, fitted to measured links: a message of b bytes
 * between two workers takes α + b·β, with (α, β) for workers on one host (IPC) and for workers on
 * different hosts (UDP). A group is W workers on H = W/G hosts of G workers each, ranks of a host
 * contiguous; m is the bytes each worker holds (nccl-tests' size). A worker posts all of a round's
 * messages at once but one thread copies them, so a round costs the sum of its messages' α and of
 * the bytes its host's link carries (a host's G workers share it), not the slowest message:
 *
 * <ul>
 *   <li>flat all-to-all: (G−1)·α_i + (W−G)·α_x + (G−1)·(m/W)·β_i + G·(W−G)·(m/W)·β_x;</li>
 *   <li>two-level all-to-all (within hosts, then between): (G−1)·α_i + (G−1)·H·(m/W)·β_i
 *       + (H−1)·α_x + G·(W−G)·(m/W)·β_x + 3·m·γ, γ the seconds per byte of a memory copy (its
 *       three copies); it sends H−1 messages across hosts instead of W−G, the same bytes;</li>
 *   <li>all-reduce: up to 4096 floats, or with two workers, one round in which each sends its
 *       vector to every other (the flat all-to-all's cost with m·W bytes); larger, a ring of 2(W−1)
 *       rounds, each α + (m/W)·β over the ring's slowest link (across hosts when H > 1).</li>
 * </ul>
 *
 * <p>A model step (one worker's share of an MoE model's training step): compute (measured at W = 1
 * on the worker's tokens; under weak scaling each worker keeps that much work) plus, per MoE
 * layer, a count round and four all-to-alls of the routed rows (dispatch and combine, forward and
 * backward: n·K·D·4 bytes each, every row a copy to some expert) and the router statistics' sum,
 * plus the dense gradients' all-reduce. Nothing overlaps: Roundhouse's step does not overlap
 * communication with compute yet.
 */
public final class CostModel {
    /** Floats up to which the all-reduce runs direct (Collectives.DIRECT_MAX_FLOATS). */
    static final int DIRECT_MAX_FLOATS = 4096;

    /**
     * The fitted links.
     *
     * @param alphaIntra  seconds per message between workers of one host
     * @param betaIntra   seconds per byte between workers of one host
     * @param alphaInter  seconds per message between hosts
     * @param betaInter   seconds per byte between hosts
     * @param gamma       seconds per byte of a memory copy
     */
    public record Links(double alphaIntra, double betaIntra, double alphaInter, double betaInter, double gamma) {
    }

    private final Links links;

    public CostModel(Links links) {
        this.links = links;
    }

    public Links links() {
        return links;
    }

    /**
     * Fits the links to a measured cluster: α the median one-way latency and β the reciprocal of
     * the median bandwidth over the pairs of each kind. A cluster of one host has no inter-host
     * pair: its inter-host link is taken as the intra-host one (and the result says so); a
     * cluster of one worker per host has no intra-host pair, likewise.
     *
     * @param latency   one-way seconds, [i][j]
     * @param bandwidth bytes per second from i to j, [i][j]
     * @param hosts     each worker's host
     * @param memcpy    bytes per second of a memory copy
     */
    public static CostModel fit(double[][] latency, double[][] bandwidth, List<String> hosts, double memcpy) {
        List<Double> latIntra = new ArrayList<>();
        List<Double> latInter = new ArrayList<>();
        List<Double> bwIntra = new ArrayList<>();
        List<Double> bwInter = new ArrayList<>();
        for (int i = 0; i < hosts.size(); i++) {
            for (int j = 0; j < hosts.size(); j++) {
                if (i == j) {
                    continue;
                }
                boolean same = hosts.get(i).equals(hosts.get(j));
                (same ? latIntra : latInter).add(latency[i][j]);
                (same ? bwIntra : bwInter).add(bandwidth[i][j]);
            }
        }
        if (latIntra.isEmpty() && latInter.isEmpty()) {
            throw new IllegalArgumentException("no pair of workers to fit links to");
        }
        double ai = median(latIntra.isEmpty() ? latInter : latIntra);
        double bi = 1 / median(bwIntra.isEmpty() ? bwInter : bwIntra);
        double ax = latInter.isEmpty() ? ai : median(latInter);
        double bx = latInter.isEmpty() ? bi : 1 / median(bwInter);
        return new CostModel(new Links(ai, bi, ax, bx, 1 / memcpy));
    }

    static double median(List<Double> v) {
        double[] a = v.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        return a.length % 2 == 1 ? a[a.length / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
    }

    /** Seconds of the flat all-to-all of m bytes per worker over W workers, G per host. */
    public double allToAllFlat(int w, int g, double m) {
        check(w, g);
        Links l = links;
        return (g - 1) * l.alphaIntra + (w - g) * l.alphaInter + (g - 1) * (m / w) * l.betaIntra
                + (double) g * (w - g) * (m / w) * l.betaInter;
    }

    /** Seconds of the two-level all-to-all (the flat one with one host, or one worker per host). */
    public double allToAllTwoLevel(int w, int g, double m) {
        check(w, g);
        int h = w / g;
        if (h == 1 || g == 1) {
            return allToAllFlat(w, g, m);
        }
        Links l = links;
        return (g - 1) * l.alphaIntra + (g - 1) * h * (m / w) * l.betaIntra + (h - 1) * l.alphaInter
                + (double) g * (w - g) * (m / w) * l.betaInter + 3 * m * l.gamma;
    }

    /** Seconds of the all-reduce of m bytes per worker. */
    public double allReduce(int w, int g, double m) {
        check(w, g);
        if (w == 1) {
            return 0;
        }
        if (m / 4 <= DIRECT_MAX_FLOATS || w == 2) {
            return allToAllFlat(w, g, m * w);
        }
        boolean across = w / g > 1;
        double alpha = across ? links.alphaInter : links.alphaIntra;
        double beta = across ? links.betaInter : links.betaIntra;
        return 2.0 * (w - 1) * (alpha + (m / w) * beta);
    }

    private static void check(int w, int g) {
        if (w < 1 || g < 1 || w % g != 0) {
            throw new IllegalArgumentException(w + " workers do not split into hosts of " + g);
        }
    }

    /**
     * What one worker's training step of a model moves, and its compute.
     *
     * @param computeSeconds  forward and backward of the worker's tokens at W = 1
     * @param tokens          tokens per worker per step (n)
     * @param moeLayers       MoE layers
     * @param dim             model width D
     * @param topK            experts per token K
     * @param experts         experts per layer E (the router statistics' size)
     * @param denseParameters parameters every worker holds (all-reduced each step)
     */
    public record Workload(double computeSeconds, int tokens, int moeLayers, int dim, int topK, int experts,
                           long denseParameters) {
        /** Bytes each worker sends in one all-to-all of routed rows. */
        double rowBytes() {
            return 4.0 * tokens * topK * dim;
        }
    }

    /**
     * A predicted step.
     *
     * @param allToAllSeconds  the step's all-to-alls (rows and counts)
     * @param allReduceSeconds the dense gradients' and router statistics' sums
     */
    public record Step(int workers, double computeSeconds, double allToAllSeconds, double allReduceSeconds) {
        public double seconds() {
            return computeSeconds + allToAllSeconds + allReduceSeconds;
        }

        public double commShare() {
            return (allToAllSeconds + allReduceSeconds) / seconds();
        }
    }

    /** The step of {@code work} at W workers, G per host, with the flat or two-level all-to-all. */
    public Step step(Workload work, int w, int g, boolean twoLevel) {
        double rows = twoLevel ? allToAllTwoLevel(w, g, work.rowBytes()) : allToAllFlat(w, g, work.rowBytes());
        double counts = w == 1 ? 0 : allToAllFlat(w, g, 4.0 * w);
        double a2a = w == 1 ? 0 : work.moeLayers() * (4 * rows + counts);
        // Router statistics: per layer a few floats per expert (load, probability mass, counts).
        double stats = work.moeLayers() * allReduce(w, g, 4.0 * 3 * work.experts());
        double grads = allReduce(w, g, 4.0 * work.denseParameters());
        return new Step(w, work.computeSeconds(), a2a, stats + grads);
    }

    /** {@link #step} at each of {@code workers}. */
    public List<Step> steps(Workload work, int[] workers, int g, boolean twoLevel) {
        return Arrays.stream(workers).mapToObj(w -> step(work, w, Math.min(g, w), twoLevel)).toList();
    }
}
