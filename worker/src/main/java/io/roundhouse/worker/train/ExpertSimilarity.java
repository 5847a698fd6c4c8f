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
    private ExpertSimilarity() {
    }

    /**
     * Per MoE layer (the {@code .moe.experts.w1} parameters in creation order), the mean pairwise
     * cosine similarity; at rank 0, null elsewhere. Every worker must call it at the same step.
     */
    static double[] of(WorkerGroup group, ParamStore params) {
        List<Double> layers = new ArrayList<>();
        for (Param p : params.all()) {
            if (p.name().endsWith(".moe.experts.w1")) {
                float[] whole = group.gatherExpert(params, p);
                if (whole != null) {
                    layers.add(meanPairwiseCosine(whole, group.placement().experts()));
                }
            }
        }
        return group.rank() == 0 ? layers.stream().mapToDouble(Double::doubleValue).toArray() : null;
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
