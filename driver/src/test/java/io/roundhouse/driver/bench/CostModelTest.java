package io.roundhouse.driver.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The α–β model: the fit recovers the links of a cluster whose pairs follow them, the collectives'
 * costs are the textbook ones where they must be (one host: (W−1)(α + m/W·β); a ring all-reduce:
 * 2(W−1)(α + m/W·β)), the two-level all-to-all trades α for copies as it should, and a step adds up.
 */
class CostModelTest {
    private static final double A_I = 5e-6;
    private static final double B_I = 1 / 5e9;
    private static final double A_X = 50e-6;
    private static final double B_X = 1 / 1.25e8;
    private static final double GAMMA = 1 / 1e10;

    private static CostModel twoHosts() {
        List<String> hosts = List.of("a", "a", "b", "b");
        double[][] lat = new double[4][4];
        double[][] bw = new double[4][4];
        for (int i = 0; i < 4; i++) {
            for (int j = 0; j < 4; j++) {
                boolean same = hosts.get(i).equals(hosts.get(j));
                // every pair a little off the link's figure, as measured pairs are: the median is the link's
                double wobble = 1 + 0.01 * ((i * 4 + j) % 3 - 1);
                lat[i][j] = (same ? A_I : A_X) * wobble;
                bw[i][j] = (same ? 1 / B_I : 1 / B_X) * wobble;
            }
        }
        return CostModel.fit(lat, bw, hosts, 1 / GAMMA);
    }

    @Test
    void fitTakesEachKindOfLinkFromItsPairs() {
        CostModel.Links l = twoHosts().links();
        assertEquals(A_I, l.alphaIntra(), A_I * 0.011);
        assertEquals(B_I, l.betaIntra(), B_I * 0.011);
        assertEquals(A_X, l.alphaInter(), A_X * 0.011);
        assertEquals(B_X, l.betaInter(), B_X * 0.011);
        assertEquals(GAMMA, l.gamma(), 1e-20);
        // One host: its link stands in for the missing inter-host one.
        CostModel one = CostModel.fit(new double[][] {{0, 3e-6}, {3e-6, 0}}, new double[][] {{0, 2e9}, {4e9, 0}},
                List.of("h", "h"), 1e10);
        assertEquals(3e-6, one.links().alphaInter(), 1e-15);
        assertEquals(1 / 3e9, one.links().betaInter(), 1e-20, "the median of 2 and 4 GB/s");
    }

    @Test
    void collectivesCostWhatTheTextbookSays() {
        CostModel cm = new CostModel(new CostModel.Links(A_I, B_I, A_X, B_X, GAMMA));
        double m = 1 << 20;
        // One host of W: (W−1) messages of m/W each.
        assertEquals(7 * (A_I + m / 8 * B_I), cm.allToAllFlat(8, 8, m), 1e-12);
        assertEquals(cm.allToAllFlat(8, 8, m), cm.allToAllTwoLevel(8, 8, m), 1e-15, "one host: no second level");
        assertEquals(cm.allToAllFlat(8, 1, m), cm.allToAllTwoLevel(8, 1, m), 1e-15, "a worker per host: likewise");
        // 4 hosts of 2: the flat one sends 6 messages across hosts, the two-level one 3, the same bytes plus copies.
        double flat = cm.allToAllFlat(8, 2, m);
        assertEquals(A_I + 6 * A_X + m / 8 * B_I + 2 * 6 * (m / 8) * B_X, flat, 1e-12);
        double two = cm.allToAllTwoLevel(8, 2, m);
        assertEquals(A_I + 4 * (m / 8) * B_I + 3 * A_X + 2 * 6 * (m / 8) * B_X + 3 * m * GAMMA, two, 1e-12);
        assertTrue(cm.allToAllTwoLevel(256, 8, 4096) < cm.allToAllFlat(256, 8, 4096), "small: fewer messages win");
        CostModel cheapMessages = new CostModel(new CostModel.Links(A_I, B_I, 1e-7, B_X, 1 / 1e9));
        assertTrue(cheapMessages.allToAllTwoLevel(8, 2, 64 << 20) > cheapMessages.allToAllFlat(8, 2, 64 << 20),
                "large, with cheap messages and slow copies: the copies lose");
        // The all-reduce: a ring across hosts when large, one direct round when small or W = 2.
        assertEquals(2 * 7 * (A_X + m / 8 * B_X), cm.allReduce(8, 2, m), 1e-12);
        assertEquals(cm.allToAllFlat(8, 2, 1024 * 8), cm.allReduce(8, 2, 1024), 1e-15);
        assertEquals(cm.allToAllFlat(2, 2, 2 * m), cm.allReduce(2, 2, m), 1e-15);
        assertEquals(0, cm.allReduce(1, 1, m));
        assertThrows(IllegalArgumentException.class, () -> cm.allToAllFlat(6, 4, m), "hosts of equal size only");
    }

    @Test
    void aStepIsComputePlusItsCollectives() {
        CostModel cm = twoHosts();
        CostModel.Workload lm = new CostModel.Workload(0.3, 2048, 4, 128, 2, 8, 400_000);
        CostModel.Step one = cm.step(lm, 1, 1, false);
        assertEquals(0.3, one.seconds(), 1e-12, "one worker talks to nobody");
        assertEquals(0, one.commShare());
        CostModel.Step s = cm.step(lm, 16, 2, false);
        double rows = cm.allToAllFlat(16, 2, 4.0 * 2048 * 2 * 128);
        double counts = cm.allToAllFlat(16, 2, 4.0 * 16);
        assertEquals(4 * (4 * rows + counts), s.allToAllSeconds(), 1e-12);
        assertEquals(4 * cm.allReduce(16, 2, 4.0 * 3 * 8) + cm.allReduce(16, 2, 4.0 * 400_000), s.allReduceSeconds(), 1e-12);
        assertEquals(s.computeSeconds() + s.allToAllSeconds() + s.allReduceSeconds(), s.seconds(), 1e-12);
        List<CostModel.Step> steps = cm.steps(lm, ClusterBench.PREDICTED, 2, true);
        for (int i = 1; i < steps.size(); i++) {
            assertTrue(steps.get(i).seconds() > steps.get(i - 1).seconds(), "more workers, more messages: " + steps);
        }
    }
}
