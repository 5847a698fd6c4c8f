package io.roundhouse.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.roundhouse.worker.train.LrSchedule;
import org.junit.jupiter.api.Test;

class LrScheduleTest {
    @Test
    void warmupThenCosine() {
        LrSchedule s = new LrSchedule(1e-3, 0.1, 10, 110);
        assertEquals(1e-4, s.at(1), 1e-12);
        assertEquals(5e-4, s.at(5), 1e-12);
        assertEquals(1e-3, s.at(10), 1e-12);
        assertEquals(0.55e-3, s.at(60), 1e-12); // half way: the mean of peak and floor
        assertEquals(1e-4, s.at(110), 1e-12);
        for (int t = 11; t <= 110; t++) {
            assertTrue(s.at(t) <= s.at(t - 1), "decays monotonically at " + t);
        }
        assertEquals(1e-3, new LrSchedule(1e-3, 0, 0, 100).at(0), 1e-12);
    }
}
