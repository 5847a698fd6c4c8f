package io.roundhouse.driver.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.roundhouse.worker.UserException;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.spark.scheduler.SparkListenerExecutorAdded;
import org.apache.spark.scheduler.SparkListenerExecutorRemoved;
import org.apache.spark.scheduler.cluster.ExecutorInfo;
import org.junit.jupiter.api.Test;

/**
 * The watch over a barrier stage's slots, fed Spark's listener events by hand: it ends the job only
 * when, after an executor was lost, fewer than W tasks run for longer than the grace.
 */
class SlotWatchTest {
    private final AtomicReference<RuntimeException> failed = new AtomicReference<>();

    private SlotWatch watch(long graceMs) {
        return new SlotWatch(2, graceMs, "run the job again with --resume /ckpt", failed::set);
    }

    private static void lose(SlotWatch w, String id) {
        w.onExecutorRemoved(new SparkListenerExecutorRemoved(0L, id, "worker lost: Not receiving heartbeat for 60 "
                + "seconds"));
    }

    @Test
    void aHostLostForGoodEndsTheJobNamingItAndTheWaysOn() {
        try (SlotWatch w = watch(0)) {
            w.onExecutorAdded(new SparkListenerExecutorAdded(0L, "1", new ExecutorInfo("10.0.0.2", 2,
                    scala.collection.immutable.Map$.MODULE$.empty())));
            w.onTaskStart(null);
            w.onTaskStart(null);
            w.check();
            assertNull(failed.get(), "two tasks run: nothing lost");
            w.onTaskEnd(null);  // the stage fails: its tasks end
            w.onTaskEnd(null);
            lose(w, "1");
            w.check();  // the shortfall starts now; with no grace it is past at once
            w.check();
            RuntimeException e = failed.get();
            assertTrue(e instanceof UserException, String.valueOf(e));
            assertEquals(UserException.RUNTIME, ((UserException) e).exitCode());
            assertTrue(e.getMessage().startsWith("the barrier stage cannot get its 2 task slots: executor 1 on "
                    + "10.0.0.2 (worker lost: Not receiving heartbeat for 60 seconds) was lost"), e.getMessage());
            assertTrue(e.getMessage().contains("bring its host back and run the job again with --resume /ckpt, or "
                    + "resume on the hosts left with fewer workers"), e.getMessage());
        }
    }

    @Test
    void anIdleExecutorLostBesideTheRunningTasksChangesNothing() {
        try (SlotWatch w = watch(0)) {
            w.onTaskStart(null);
            w.onTaskStart(null);
            lose(w, "7");
            w.check();
            w.check();
            assertNull(failed.get());
        }
    }

    @Test
    void aReplacedExecutorRunsTheRerunAndTheWatchStaysQuiet() {
        try (SlotWatch w = watch(60_000)) {
            w.onTaskStart(null);
            w.onTaskStart(null);
            w.onTaskEnd(null);
            w.onTaskEnd(null);
            lose(w, "1");
            w.check();
            assertNull(failed.get(), "within the grace");
            w.onTaskStart(null);  // the re-run's tasks on the new executor
            w.onTaskStart(null);
            w.check();
            assertNull(failed.get());
        }
    }
}
