package io.roundhouse.worker.train;

import io.roundhouse.worker.model.Param;
import io.roundhouse.worker.model.ParamStore;
import io.roundhouse.worker.parallel.WorkerGroup;
import java.util.ArrayList;
import java.util.List;

/**
 * How alike a layer's experts are: the mean, over every pair of experts, of the cosine similarity
 * of their flattened first weights ({@code w1}). Near 1: over-provisioned experts that learnt the
 * same function (the top-k analysis in PAPERS.md says to watch for them); near 0: unrelated
 * experts, as at initialisation. Over every worker's experts: a collective.
 */
final class ExpertSimilarity {
    private final WorkerGroup group;
    private final ParamStore params;
    private final List<Param> w1s = new ArrayList<>();  // each MoE layer's expert w1, in creation order
    private final float[][] mine;                       // this worker's slice of each
    private final float[][] whole;                      // every expert's, at rank 0

    /** Buffers for every MoE layer's {@code .moe.experts.w1}, made once: {@link #of} allocates next to nothing. */
    ExpertSimilarity(WorkerGroup group, ParamStore params) {
        this.group = group;
        this.params = params;
        for (Param p : params.all()) {
            if (p.name().endsWith(".moe.experts.w1")) {
                w1s.add(p);
            }
        }
        this.mine = new float[w1s.size()][];
        this.whole = new float[w1s.size()][];
        for (int i = 0; i < w1s.size(); i++) {
            int n = w1s.get(i).value().size();
            mine[i] = new float[n];
            whole[i] = new float[group.rank() == 0 ? n / group.placement().expertCount(group.rank())
                    * group.placement().experts() : 0];
        }
    }

    /**
     * Per MoE layer (the {@code .moe.experts.w1} parameters in creation order), the mean pairwise
     * cosine similarity; at rank 0, null elsewhere. Every worker must call it at the same step.
     */
    double[] of() {
        double[] layers = group.rank() == 0 ? new double[w1s.size()] : null;
        for (int i = 0; i < w1s.size(); i++) {
            params.backend().read(w1s.get(i).value(), mine[i]);
            group.gatherExpert(mine[i], whole[i]);
            if (layers != null) {
                layers[i] = meanPairwiseCosine(whole[i], group.placement().experts());
            }
        }
        return layers;
    }

    /** The mean over pairs i < j of cos(v_i, v_j), v_e the e-th of {@code e} equal slices of {@code whole}. */
    static double meanPairwiseCosine(float[] whole, int e) {
        if (e < 2) {
            return Double.NaN;
        }
        int per = whole.length / e;
        double[] norm = new double[e];
        for (int i = 0; i < e; i++) {
            double s = 0;
            for (int c = 0; c < per; c++) {
                double v = whole[i * per + c];
                s += v * v;
            }
            norm[i] = Math.sqrt(s);
        }
        double sum = 0;
        for (int i = 0; i < e; i++) {
            for (int j = i + 1; j < e; j++) {
                double dot = 0;
                for (int c = 0; c < per; c++) {
                    dot += (double) whole[i * per + c] * whole[j * per + c];
                }
                sum += norm[i] == 0 || norm[j] == 0 ? 0 : dot / (norm[i] * norm[j]);
            }
        }
        return sum / (e * (e - 1) / 2.0);
    }
}
