package io.roundhouse.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.roundhouse.worker.train.Eta;
import org.junit.jupiter.api.Test;

/** The progress line's time left: measured per step after a warm-up, never 0 while steps remain. */
class EtaTest {
    @Test
    void noEstimateUntilStepsAreTimedThenTheMeasuredRate() {
        Eta eta = new Eta();
        // A slow first step (start-up), then 0.5 s per step.
        eta.stepDone(1, 10.0);
        assertEquals(-1, eta.secondsLeft(100));
        assertEquals("?", eta.format(100));
        for (int s = 2; s <= 9; s++) {
            eta.stepDone(s, 10.0 + 0.5 * (s - 1));
            assertEquals(-1, eta.secondsLeft(100), "step " + s + ": not measured long enough");
        }
        eta.stepDone(10, 14.5);
        assertEquals(45, eta.secondsLeft(100), "90 steps at 0.5 s, the slow start left out");
        assertEquals("45s", eta.format(100));
        assertEquals("7m30s", eta.format(910));
    }

    @Test
    void theEstimateFollowsTheRecentSteps() {
        Eta eta = new Eta();
        for (int s = 1; s <= 100; s++) {
            eta.stepDone(s, 2.0 * s);  // slow at first: 2 s a step
        }
        for (int s = 101; s <= 1000; s++) {
            eta.stepDone(s, 200 + 0.125 * (s - 100));  // then 0.125 s a step (exact in binary)
        }
        assertEquals(125, eta.secondsLeft(2000), "1000 steps at the last 256 steps' 0.125 s");
    }

    @Test
    void neverZeroWhileStepsRemainAndZeroAtTheEnd() {
        Eta eta = new Eta();
        for (int s = 1; s <= 20; s++) {
            eta.stepDone(s, 0.001 * s);  // fast steps: a fraction of a second left
        }
        assertEquals(1, eta.secondsLeft(21));
        assertEquals(0, eta.secondsLeft(20));
    }

    @Test
    void aResumedRunCountsFromItsFirstStep() {
        Eta eta = new Eta();
        for (int s = 501; s <= 520; s++) {
            eta.stepDone(s, 2.0 * (s - 500));
        }
        assertEquals(2 * 80, eta.secondsLeft(600));
    }
}
