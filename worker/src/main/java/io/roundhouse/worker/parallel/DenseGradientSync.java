package io.roundhouse.worker.parallel;

import io.roundhouse.comms.Collectives;
import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.HostBuffer;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.worker.model.Param;
import io.roundhouse.worker.model.ParamStore;
import java.util.ArrayList;
import java.util.List;

/**
 * Data parallelism for the dense parameters: after backward, every worker's gradients of the
 * replicated (non-expert) parameters are summed with one all-reduce over a flat buffer that
 * holds them all in creation order, so every worker steps identically and the result is the same
 * from run to run. The same all-reduce carries each worker's squared norm of its expert gradients
 * (experts stay local when each lives on one worker) and any per-step values the caller wants
 * summed (the trainer's metrics), so a step synchronises once, not once per parameter or value.
 *
 * <p>With expert replicas (W > E) the buffer also holds, per expert parameter, a slot for each of
 * the E experts: every worker writes its hosted expert's gradient into that expert's slot (zeros
 * elsewhere), so the sum gives every replica the gradient over all tokens its expert saw, and
 * every worker sees every expert's gradient once for the norm.
 */
public final class DenseGradientSync {
    private final Backend be;
    private final Collectives c;
    private final List<Param> dense = new ArrayList<>();
    private final List<Param> experts = new ArrayList<>();
    private final int[] offsets;         // [dense + 1] where each dense gradient starts in flat
    private final boolean replicated;
    private final int expertSlot;        // which of the E slots this worker's expert fills
    private final int experts0;          // where the replica slots start
    private final int expertsEnd;        // where they end (= experts0 without replicas)
    private final int[] expertOffsets;   // [expert params] start of each parameter's E slots
    private final HostBuffer flat;       // [dense | replica slots | expert squared norm | extra]
    private final List<Tensor> denseGrads = new ArrayList<>();
    private final List<Tensor> expertGrads = new ArrayList<>();
    private final int[] replicaAt;       // [expert params] where this worker's slot of each starts in flat

    /**
     * @param placement where the experts live (replicas are summed when W > E)
     * @param extra     how many values {@link #allReduce(float[])} sums along with the gradients
     */
    public DenseGradientSync(Backend be, ParamStore params, Collectives c, ExpertPlacement placement, int extra) {
        this.be = be;
        this.c = c;
        for (Param p : params.trainable()) {
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
        this.replicated = placement.replicated();
        this.expertSlot = placement.firstExpert(c.member().rank());
        this.experts0 = offsets[dense.size()];
        this.expertOffsets = new int[experts.size()];
        int at = experts0;
        if (replicated) {
            for (int i = 0; i < experts.size(); i++) {
                expertOffsets[i] = at;
                at += experts.get(i).grad().size() * placement.experts();  // one hosted expert per worker
            }
        }
        this.expertsEnd = at;
        for (Param p : dense) {
            denseGrads.add(p.grad());
        }
        this.replicaAt = new int[experts.size()];
        for (int i = 0; i < experts.size(); i++) {
            expertGrads.add(experts.get(i).grad());
            replicaAt[i] = expertOffsets[i] + expertSlot * experts.get(i).grad().size();
        }
        // The backend's host buffer (page-locked on a GPU): gradients are copied straight into the
        // memory the all-reduce sends from.
        this.flat = be.allocateHost("gradients.flat", expertsEnd + 1 + extra);
    }

    /** Expert parameters are named {@code <block>.moe.experts.<w1|b1|w2|b2>}. */
    static boolean isExpert(Param p) {
        return p.expert();
    }

    /**
     * Sums the dense gradients (and, with replicas, the expert gradients among replicas) over the
     * workers in place, and {@code extra} (of the length given at construction) likewise.
     *
     * @return the L2 norm of the whole model's gradient: dense gradients once, every expert's once
     */
    public double allReduce(float[] extra) {
        int size = expertsEnd + 1 + extra.length;
        if (size != flat.capacity()) {
            throw new IllegalArgumentException("allReduce: " + extra.length + " extra values, built for "
                    + (flat.capacity() - expertsEnd - 1));
        }
        // Batched: on a GPU each batch is one wait, not one per parameter.
        be.read(denseGrads, flat, offsets);
        double expertSq = 0;
        if (replicated) {
            for (int j = experts0; j < expertsEnd; j++) {
                flat.put(j, 0f);
            }
            be.read(expertGrads, flat, replicaAt);
        } else {
            expertSq = be.sumSquares(expertGrads);
        }
        flat.put(expertsEnd, (float) expertSq);
        flat.put(expertsEnd + 1, extra, 0, extra.length);
        c.allReduceSum(flat.bytes(), 0, size);
        be.write(denseGrads, flat, offsets);
        double replicaSq = 0;
        if (replicated) {
            be.write(expertGrads, flat, replicaAt);
            for (int j = experts0; j < expertsEnd; j++) {
                double v = flat.get(j);
                replicaSq += v * v;
            }
        }
        flat.get(expertsEnd + 1, extra, 0, extra.length);
        double denseSq = be.sumSquares(denseGrads);
        return Math.sqrt(denseSq + flat.get(expertsEnd) + replicaSq);
    }
}
