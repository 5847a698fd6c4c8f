package io.roundhouse.worker.parallel;

import io.roundhouse.comms.Collectives;
import io.roundhouse.kernels.Backend;
import io.roundhouse.worker.model.Param;
import io.roundhouse.worker.model.ParamStore;
import java.util.ArrayList;
import java.util.List;

/**
 * Data parallelism for the dense parameters: after backward, every worker's gradients of the
 * replicated (non-expert) parameters are summed with one ring all-reduce over a flat buffer that
 * holds them all in creation order, so every worker steps identically and the result is the same
 * from run to run. The same all-reduce carries each worker's squared norm of its expert gradients
 * (experts stay local: each lives on one worker) and any per-step values the caller wants summed
 * (the trainer's metrics), so a step synchronises once, not once per parameter or per value.
 */
public final class DenseGradientSync {
    private final Backend be;
    private final Collectives c;
    private final List<Param> dense = new ArrayList<>();
    private final List<Param> experts = new ArrayList<>();
    private final int[] offsets;
    private final float[] flat;   // [dense gradients | expert squared norm | extra]

    /** @param extra how many values {@link #allReduce(float[])} sums along with the gradients */
    public DenseGradientSync(Backend be, ParamStore params, Collectives c, int extra) {
        this.be = be;
        this.c = c;
        for (Param p : params.all()) {
            if (isExpert(p)) {
                experts.add(p);
            } else {
                dense.add(p);
            }
        }
        this.offsets = new int[dense.size() + 1];
        for (int i = 0; i < dense.size(); i++) {
            offsets[i + 1] = offsets[i] + dense.get(i).grad().size();
        }
        this.flat = new float[offsets[dense.size()] + 1 + extra];
    }

    /** Expert parameters are named {@code <block>.moe.experts.<w1|b1|w2|b2>}. */
    static boolean isExpert(Param p) {
        return p.name().contains(".experts.");
    }

    /**
     * Sums the dense gradients over the workers in place, and {@code extra} (of the length given
     * at construction) likewise.
     *
     * @return the L2 norm of the whole model's gradient: dense gradients once, every worker's
     *         expert gradients
     */
    public double allReduce(float[] extra) {
        int n = offsets[dense.size()];
        if (extra.length != flat.length - n - 1) {
            throw new IllegalArgumentException("allReduce: " + extra.length + " extra values, built for "
                    + (flat.length - n - 1));
        }
        for (int i = 0; i < dense.size(); i++) {
            be.read(dense.get(i).grad(), flat, offsets[i]);
        }
        double expertSq = 0;
        for (Param p : experts) {
            expertSq += be.sumSquares(p.grad());
        }
        flat[n] = (float) expertSq;
        System.arraycopy(extra, 0, flat, n + 1, extra.length);
        c.allReduceSum(flat, 0, flat.length);
        for (int i = 0; i < dense.size(); i++) {
            be.write(dense.get(i).grad(), flat, offsets[i]);
        }
        System.arraycopy(flat, n + 1, extra, 0, extra.length);
        double denseSq = 0;
        for (Param p : dense) {
            denseSq += be.sumSquares(p.grad());
        }
        return Math.sqrt(denseSq + flat[n]);
    }
}
