package io.roundhouse.worker.parallel;

import io.roundhouse.comms.Collectives;
import io.roundhouse.kernels.Backend;
import io.roundhouse.worker.model.Param;
import io.roundhouse.worker.model.ParamStore;
import java.util.ArrayList;
import java.util.List;

/**
 * Data parallelism for the dense parameters: after backward, every worker's gradients of the
 * replicated (non-expert) parameters are summed with the ring all-reduce, parameter by parameter
 * in creation order, so every worker steps identically and the result is the same from run to run.
 * Expert gradients stay local (each expert lives on one worker). The global gradient norm for
 * clipping counts the dense gradients once and every worker's expert gradients.
 */
public final class DenseGradientSync {
    private final Backend be;
    private final Collectives c;
    private final List<Param> dense = new ArrayList<>();
    private final List<Param> experts = new ArrayList<>();
    private final List<float[]> host = new ArrayList<>();
    private final float[] one = new float[1];

    public DenseGradientSync(Backend be, ParamStore params, Collectives c) {
        this.be = be;
        this.c = c;
        for (Param p : params.all()) {
            if (isExpert(p)) {
                experts.add(p);
            } else {
                dense.add(p);
                host.add(new float[p.grad().size()]);
            }
        }
    }

    /** Expert parameters are named {@code <block>.moe.experts.<w1|b1|w2|b2>}. */
    static boolean isExpert(Param p) {
        return p.name().contains(".experts.");
    }

    /** Sums the dense gradients over the workers, in place. */
    public void allReduce() {
        for (int i = 0; i < dense.size(); i++) {
            Param p = dense.get(i);
            float[] g = host.get(i);
            be.read(p.grad(), g);
            c.allReduceSum(g, 0, g.length);
            be.write(p.grad(), g);
        }
    }

    /** The L2 norm of all gradients of the whole model (call after {@link #allReduce}). */
    public double globalNorm() {
        double denseSq = 0;
        for (Param p : dense) {
            denseSq += be.sumSquares(p.grad());
        }
        double expertSq = 0;
        for (Param p : experts) {
            expertSq += be.sumSquares(p.grad());
        }
        one[0] = (float) expertSq;
        c.allReduceSum(one, 0, 1);
        return Math.sqrt(denseSq + one[0]);
    }
}
