package io.roundhouse.worker.train;

import java.lang.management.ManagementFactory;

/** Bytes allocated so far by every live thread of this JVM (HotSpot's per-thread counters). */
public final class Allocation {
    private static final com.sun.management.ThreadMXBean MX =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

    private Allocation() {
    }

    /** The sum over live threads (a thread that ended takes its count with it); 0 where unsupported. */
    public static long bytes() {
        if (!MX.isThreadAllocatedMemorySupported()) {
            return 0;
        }
        long sum = 0;
        for (long b : MX.getThreadAllocatedBytes(MX.getAllThreadIds())) {
            sum += Math.max(0, b);
        }
        return sum;
    }
}
