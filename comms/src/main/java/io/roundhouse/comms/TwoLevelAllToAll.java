package io.roundhouse.comms;

import org.agrona.UnsafeApi;

/**
 * The all-to-all in two levels, for groups over several hosts (as Tutel and DeepSpeed-MoE do):
 * first within each host, rank (h, l) hands local rank (h, l') every block bound for local index
 * l' on any host; then between hosts, rank (h, l') sends rank (g, l') at once everything of its
 * host bound for it. A rank sends H − 1 messages across hosts (H hosts) instead of W − W/H, each
 * W/H times larger, for two rounds instead of one and three copies of the data. The hosts are read
 * from the members' endpoints; with one host, one rank per host or hosts of unequal sizes it runs
 * the flat all-to-all. Sizes come from the W × W matrix every member knows, so it needs no count
 * round. Used through {@link Collectives#allToAllV2D}.
 */
final class TwoLevelAllToAll {
    private static final long FLOAT_BASE = UnsafeApi.arrayBaseOffset(float[].class);

    /** The one-level all-to-all between floats at (base, address). */
    interface Flat {
        void run(Object send, long sendAt, int[] sendCounts, Object recv, long recvAt, int[] recvCounts);
    }

    private final Member m;
    private final int rank;
    private final int size;
    private final int[] sendCounts;
    private final int[] recvCounts;
    private boolean laidOut;
    private int[][] rankOf;        // [H][L] the rank at host h, local index l; null: run flat
    private int hostIndex;         // this rank's host h
    private int localIndex;        // and local index l
    private float[] out1 = new float[0];
    private float[] in1 = new float[0];
    private float[] out2 = new float[0];
    private float[] in2 = new float[0];

    TwoLevelAllToAll(Member m) {
        this.m = m;
        this.rank = m.rank();
        this.size = m.size();
        this.sendCounts = new int[size];
        this.recvCounts = new int[size];
    }

    /** What this rank sends each rank by {@code matrix}: its row (reused array). */
    int[] sendCounts(int[] matrix) {
        check(matrix);
        System.arraycopy(matrix, rank * size, sendCounts, 0, size);
        return sendCounts;
    }

    /** What each rank sends this one by {@code matrix}: its column (reused array). */
    int[] recvCounts(int[] matrix) {
        check(matrix);
        for (int s = 0; s < size; s++) {
            recvCounts[s] = matrix[s * size + rank];
        }
        return recvCounts;
    }

    private void check(int[] matrix) {
        if (matrix.length != size * size) {
            throw new IllegalArgumentException("allToAllV2D: a matrix of " + matrix.length + " counts for a group of "
                    + size + " (needs W·W)");
        }
    }

    /**
     * The hosts of the group as the members' endpoints name them (hosts in order of their first
     * rank, ranks in order within a host) into {@link #rankOf}; left null, so the all-to-all runs
     * flat, with one host, one rank per host, or hosts of different sizes.
     */
    private void layOut() {
        laidOut = true;
        java.util.List<String> eps = m.endpoints();
        java.util.Map<String, Integer> hosts = new java.util.LinkedHashMap<>();
        int[] host = new int[size];
        int[] local = new int[size];
        java.util.List<Integer> perHost = new java.util.ArrayList<>();
        for (int r = 0; r < size; r++) {
            int h = hosts.computeIfAbsent(Links.host(eps.get(r)), k -> hosts.size());
            if (h == perHost.size()) {
                perHost.add(0);
            }
            host[r] = h;
            local[r] = perHost.get(h);
            perHost.set(h, local[r] + 1);
        }
        int hostCount = perHost.size();
        if (hostCount == 1 || perHost.get(0) == 1 || perHost.stream().distinct().count() != 1) {
            return;
        }
        rankOf = new int[hostCount][perHost.get(0)];
        for (int r = 0; r < size; r++) {
            rankOf[host[r]][local[r]] = r;
        }
        hostIndex = host[rank];
        localIndex = local[rank];
    }

    /** The all-to-all between floats at (base, address); {@code flat} runs it in one level. */
    void run(Object send, long sendAt, Object recv, long recvAt, int[] matrix, Flat flat) {
        if (!laidOut) {
            layOut();
        }
        int[] sendCounts = sendCounts(matrix);
        int[] recvCounts = recvCounts(matrix);
        if (rankOf == null) {
            flat.run(send, sendAt, sendCounts, recv, recvAt, recvCounts);
            return;
        }
        int hosts = rankOf.length;
        int perHost = rankOf[0].length;
        int h = hostIndex;
        int l = localIndex;
        // Phase 1 sizes: to local peer q = (h, j): Σ over hosts g of what I send (g, j); from local
        // peer (h, j): Σ over g of what it sends (g, l).
        int[] out1At = new int[perHost + 1];
        int[] in1At = new int[perHost + 1];
        for (int j = 0; j < perHost; j++) {
            int o = 0;
            int i = 0;
            for (int g = 0; g < hosts; g++) {
                o += matrix[rank * size + rankOf[g][j]];
                i += matrix[rankOf[h][j] * size + rankOf[g][l]];
            }
            out1At[j + 1] = out1At[j] + o;
            in1At[j + 1] = in1At[j] + i;
        }
        out1 = grow(out1, out1At[perHost]);
        in1 = grow(in1, in1At[perHost]);
        int[] sendAtOf = offsets(sendCounts);
        for (int j = 0; j < perHost; j++) {
            long at = FLOAT_BASE + 4L * out1At[j];
            for (int g = 0; g < hosts; g++) {
                int d = rankOf[g][j];
                UnsafeApi.copyMemory(send, sendAt + 4L * sendAtOf[d], out1, at, 4L * sendCounts[d]);
                at += 4L * sendCounts[d];
            }
        }
        m.beginOp("allToAll 2D");
        UnsafeApi.copyMemory(out1, FLOAT_BASE + 4L * out1At[l], in1, FLOAT_BASE + 4L * in1At[l],
                4L * (out1At[l + 1] - out1At[l]));
        for (int j = 0; j < perHost; j++) {
            int q = rankOf[h][j];
            if (q != rank) {
                m.send(q, out1, FLOAT_BASE + 4L * out1At[j], 4 * (out1At[j + 1] - out1At[j]));
                m.receive(q, in1, FLOAT_BASE + 4L * in1At[j], 4 * (in1At[j + 1] - in1At[j]),
                        4 * (in1At[j + 1] - in1At[j]));
            }
        }
        m.transfer();
        m.nextStep();
        // in1 holds, per local source (h, j), its blocks for (g, l), g = 0..H-1 in order.
        // Phase 2: to (g, l), g ≠ h: the blocks of every local source j for (g, l), in j order.
        int[] out2At = new int[hosts + 1];
        int[] in2At = new int[hosts + 1];
        for (int g = 0; g < hosts; g++) {
            int o = 0;
            int i = 0;
            for (int j = 0; j < perHost; j++) {
                o += matrix[rankOf[h][j] * size + rankOf[g][l]];
                i += matrix[rankOf[g][j] * size + rank];
            }
            out2At[g + 1] = out2At[g] + (g == h ? 0 : o);
            in2At[g + 1] = in2At[g] + (g == h ? 0 : i);
        }
        out2 = grow(out2, out2At[hosts]);
        in2 = grow(in2, in2At[hosts]);
        int[] recvAtOf = offsets(recvCounts);
        for (int j = 0; j < perHost; j++) {
            int src = rankOf[h][j];
            long at = FLOAT_BASE + 4L * in1At[j];
            for (int g = 0; g < hosts; g++) {
                int n = matrix[src * size + rankOf[g][l]];
                if (g == h) {  // bound for me: straight to its place
                    UnsafeApi.copyMemory(in1, at, recv, recvAt + 4L * recvAtOf[src], 4L * n);
                } else {
                    long to = FLOAT_BASE + 4L * out2At[g];
                    for (int jj = 0; jj < j; jj++) {
                        to += 4L * matrix[rankOf[h][jj] * size + rankOf[g][l]];
                    }
                    UnsafeApi.copyMemory(in1, at, out2, to, 4L * n);
                }
                at += 4L * n;
            }
        }
        for (int g = 0; g < hosts; g++) {
            if (g != h) {
                int q = rankOf[g][l];
                m.send(q, out2, FLOAT_BASE + 4L * out2At[g], 4 * (out2At[g + 1] - out2At[g]));
                m.receive(q, in2, FLOAT_BASE + 4L * in2At[g], 4 * (in2At[g + 1] - in2At[g]),
                        4 * (in2At[g + 1] - in2At[g]));
            }
        }
        m.transfer();
        // in2 holds, per host g ≠ h, the blocks of its ranks (g, j) for me, in j order.
        for (int g = 0; g < hosts; g++) {
            if (g == h) {
                continue;
            }
            long at = FLOAT_BASE + 4L * in2At[g];
            for (int j = 0; j < perHost; j++) {
                int src = rankOf[g][j];
                UnsafeApi.copyMemory(in2, at, recv, recvAt + 4L * recvAtOf[src], 4L * recvCounts[src]);
                at += 4L * recvCounts[src];
            }
        }
    }

    private static float[] grow(float[] a, int n) {
        return a.length >= n ? a : new float[n];
    }

    private static int[] offsets(int[] counts) {
        int[] o = new int[counts.length];
        for (int r = 1; r < counts.length; r++) {
            o[r] = o[r - 1] + counts[r - 1];
        }
        return o;
    }
}
