package io.roundhouse.worker.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The mean pairwise cosine of experts' weights against hand-worked cases and a plain double loop. */
class ExpertSimilarityTest {
    @Test
    void identicalOrthogonalAndOppositeExperts() {
        // three experts of 2 weights: e0 = (1, 0), e1 = (2, 0) (same direction), e2 = (0, 3) (orthogonal)
        float[] w = {1, 0, 2, 0, 0, 3};
        // pairs: (0,1) 1, (0,2) 0, (1,2) 0 → mean 1/3
        assertEquals(1.0 / 3, ExpertSimilarity.meanPairwiseCosine(w, 3), 1e-12);
        assertEquals(-1.0, ExpertSimilarity.meanPairwiseCosine(new float[] {1, 2, -1, -2}, 2), 1e-12);
        assertTrue(Double.isNaN(ExpertSimilarity.meanPairwiseCosine(new float[] {1, 2}, 1)), "one expert: no pair");
    }

    @Test
    void randomExpertsAreNearlyUnrelated() {
        java.util.SplittableRandom r = new java.util.SplittableRandom(3);
        int e = 8;
        int per = 4096;
        float[] w = new float[e * per];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) (r.nextDouble() - 0.5);
        }
        double m = ExpertSimilarity.meanPairwiseCosine(w, e);
        assertTrue(Math.abs(m) < 0.02, "independent random experts: cosine near 0, got " + m);
    }
}
