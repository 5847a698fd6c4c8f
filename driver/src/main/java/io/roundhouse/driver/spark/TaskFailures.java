package io.roundhouse.driver.spark;

import io.roundhouse.driver.RoundhouseCli;
import io.roundhouse.kernels.BackendException;
import io.roundhouse.worker.UserException;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.spark.ExceptionFailure;
import org.apache.spark.SparkContext;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerTaskEnd;

/**
 * Follows the workers' task failures on the driver. A task that fails with the user's error of
 * the kind a retry cannot fix (a {@link UserException} with exit code 2, a
 * {@link BackendException}: bad config, data or checkpoint, no GPU) ends the job at once instead
 * of after every stage attempt; a job that fails anyway is reported by the last task's exception
 * (Spark reports an exhausted barrier stage only as text).
 */
final class TaskFailures extends SparkListener {
    private final SparkContext sc;
    private final String jobGroup;
    private final AtomicReference<Throwable> last = new AtomicReference<>();
    private final AtomicReference<RuntimeException> fatal = new AtomicReference<>();

    /** @param jobGroup the Spark job group of the run's jobs, cancelled on a fatal failure */
    TaskFailures(SparkContext sc, String jobGroup) {
        this.sc = sc;
        this.jobGroup = jobGroup;
    }

    @Override
    public void onTaskEnd(SparkListenerTaskEnd end) {
        if (!(end.reason() instanceof ExceptionFailure failure) || failure.exception().isEmpty()) {
            return;  // a success, a killed task, a lost executor: Spark retries those
        }
        Throwable t = failure.exception().get();
        last.set(t);
        boolean noRetryHelps = RoundhouseCli.isUserError(t) && RoundhouseCli.exitCode(t) == RoundhouseCli.EXIT_USAGE;
        if (noRetryHelps && fatal.compareAndSet(null, (RuntimeException) t)) {
            sc.cancelJobGroup(jobGroup);
        }
    }

    /** The user's error that ended the job at once, or null. */
    RuntimeException fatal() {
        return fatal.get();
    }

    /**
     * What to throw for a job that failed with {@code e}: the error that ended it, else the last
     * task's exception when it is the user's (or, for a bug, {@code e} with it as the cause), else
     * (executors lost) a run-time error naming Spark's reason.
     */
    RuntimeException explain(Exception e) {
        if (RoundhouseCli.isUserError(e)) {
            return (RuntimeException) e;  // the driver's own (e.g. a checkpoint folder it cannot use), not a task's
        }
        RuntimeException cause = fatal.get();
        Throwable t = last.get();
        if (cause == null && RoundhouseCli.isUserError(t)) {
            cause = (RuntimeException) t;
        }
        if (cause != null) {
            cause.addSuppressed(e);
            return cause;
        }
        if (t != null) {
            e.addSuppressed(t);  // a bug in a task: the command line prints both traces
            return e instanceof RuntimeException r ? r : new IllegalStateException("a worker failed", e);
        }
        String why = e.getMessage() == null ? e.toString() : e.getMessage().lines().findFirst().orElse("");
        return new UserException(UserException.RUNTIME, "the Spark job failed: " + why
                + " (the executors' logs say why)", e);
    }
}
