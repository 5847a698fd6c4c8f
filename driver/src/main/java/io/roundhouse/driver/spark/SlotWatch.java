package io.roundhouse.driver.spark;

import io.roundhouse.worker.UserException;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerExecutorAdded;
import org.apache.spark.scheduler.SparkListenerExecutorRemoved;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.scheduler.SparkListenerTaskStart;

/**
 * Ends a job whose barrier stage can no longer be scheduled. Once an executor is lost for good (a
 * host gone, not back within Spark's heartbeat timeout), Spark re-runs the failed barrier stage,
 * which needs every one of its W task slots at once; with fewer left it waits for them forever
 * (its slot check runs when a job is submitted, not when a stage is re-run). So when, after an
 * executor was removed, fewer than W tasks run for {@code graceMs}, the job fails with an error that
 * names the lost executor and the two ways on: bring the host back, or resume on fewer workers. A
 * lost executor that Spark replaces (a killed executor JVM) has the re-run's W tasks running within
 * seconds; an idle executor lost beside W running tasks changes nothing.
 */
final class SlotWatch extends SparkListener implements AutoCloseable {
    private final int workers;
    private final long graceNanos;
    private final String resume;
    private final Consumer<RuntimeException> fail;
    private final Map<String, String> hosts = new ConcurrentHashMap<>();
    private final AtomicBoolean fired = new AtomicBoolean();
    private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "roundhouse-slot-watch");
        t.setDaemon(true);
        return t;
    });
    private final AtomicInteger running = new AtomicInteger();
    private volatile long lostAt;      // System.nanoTime() of the last removal before W tasks ran again; 0: none
    private volatile String lostWhat;  // "executor 1 on 10.0.0.2 (worker lost: ...)"
    private long shortSince;           // the timer's: since when fewer than W tasks run after a loss; 0: not now

    /**
     * @param workers the barrier stage's tasks W
     * @param graceMs how long the re-run may wait for its slots
     * @param resume  how to resume the run (its checkpoints), the end of the error
     * @param fail    ends the job with the error (cancels it)
     */
    SlotWatch(int workers, long graceMs, String resume, Consumer<RuntimeException> fail) {
        this.workers = workers;
        this.graceNanos = graceMs * 1_000_000L;
        this.resume = resume;
        this.fail = fail;
        timer.scheduleWithFixedDelay(this::check, 1, 1, TimeUnit.SECONDS);
    }

    @Override
    public void onExecutorAdded(SparkListenerExecutorAdded added) {
        hosts.put(added.executorId(), added.executorInfo().executorHost());
    }

    @Override
    public void onExecutorRemoved(SparkListenerExecutorRemoved removed) {
        String host = hosts.remove(removed.executorId());
        lostWhat = "executor " + removed.executorId() + (host == null ? "" : " on " + host) + " ("
                + removed.reason().lines().findFirst().orElse("lost") + ")";
        lostAt = System.nanoTime();
    }

    @Override
    public void onTaskStart(SparkListenerTaskStart start) {
        if (running.incrementAndGet() >= workers) {
            lostAt = 0;
        }
    }

    @Override
    public void onTaskEnd(SparkListenerTaskEnd end) {
        running.decrementAndGet();
    }

    /** Fails the job once fewer than W tasks have run for longer than the grace since a loss. */
    void check() {
        long now = System.nanoTime();
        if (lostAt == 0 || running.get() >= workers) {
            shortSince = 0;
            return;
        }
        if (shortSince == 0) {
            shortSince = now;
        }
        if (now - shortSince < graceNanos || !fired.compareAndSet(false, true)) {
            return;
        }
        fail.accept(new UserException(UserException.RUNTIME, "the barrier stage cannot get its " + workers
                + " task slots: " + lostWhat + " was lost " + Math.round((now - lostAt) / 1e9) + " s ago, and "
                + running.get() + " task(s) have run since; bring its host back and " + resume
                + ", or resume on the hosts left with fewer workers (workers=W' and the same --resume)"));
    }

    @Override
    public void close() {
        timer.shutdownNow();
    }
}
