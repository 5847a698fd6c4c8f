package io.roundhouse.comms;

import java.util.List;
import org.agrona.concurrent.BackoffIdleStrategy;
import org.agrona.concurrent.BusySpinIdleStrategy;
import org.agrona.concurrent.IdleStrategy;
import org.agrona.concurrent.YieldingIdleStrategy;

/** What a {@link Member} does while it waits ({@code comms.idle}), with {@code auto} chosen from the host's cores. */
public final class IdleChoice {
    /**
     * A background member's strategy ({@link Member#sibling}: the gradient buckets' comms thread):
     * spin and yield briefly, then park for up to 100 µs, so that waiting for a late peer takes no
     * core from the compute threads; its results are due only later, so a late wake-up costs little.
     */
    static final String BACKGROUND = "background";

    private IdleChoice() {
    }

    /**
     * {@code comms.idle=auto}: {@code busy} where the host has a core to spare (one per member on
     * it, the media driver's threads, and one more), since a waiting member's own compute threads are
     * idle and spinning then answers fastest; otherwise {@code yielding} when some link is UDP (the
     * driver's thread moves those bytes and gets the core at each yield, where a parked member wakes
     * 50+ µs late: 178 against 12.8 µs a round trip on 2 cores), and {@code backoff} for an all-IPC
     * group (it spins and yields ~100 ms before it parks).
     */
    static String autoIdle(int cores, int membersHere, int driverThreads, boolean allIpc) {
        if (cores >= membersHere + driverThreads + 1) {
            return "busy";
        }
        return allIpc ? "backoff" : "yielding";
    }

    /** The idle strategy rank {@code rank} of a group at {@code endpoints} waits with: {@code comms.idle}, auto resolved. */
    public static String idleFor(CommsConfig cfg, int rank, List<String> endpoints) {
        return cfg.idle().equals("auto")
                ? autoIdle(Runtime.getRuntime().availableProcessors(), membersOnHost(rank, endpoints), driverThreads(cfg),
                        new Links(cfg, rank, endpoints).allIpc())
                : cfg.idle();
    }

    /** How many members (rank's too) have their endpoint on rank's host. */
    private static int membersOnHost(int rank, List<String> endpoints) {
        String here = Links.host(endpoints.get(rank));
        int n = 0;
        for (String ep : endpoints) {
            n += Links.host(ep).equals(here) ? 1 : 0;
        }
        return n;
    }

    private static int driverThreads(CommsConfig cfg) {
        return switch (cfg.driverThreading()) {
            case "dedicated" -> 3;
            case "shared_network" -> 2;
            default -> 1;
        };
    }

    /** The strategy named {@code name} (busy, yielding, backoff or background), backoff tuned for IPC or UDP. */
    static IdleStrategy strategy(String name, boolean allIpc) {
        return switch (name) {
            case "busy" -> new BusySpinIdleStrategy();
            case "yielding" -> new YieldingIdleStrategy();
            case BACKGROUND -> new BackoffIdleStrategy(20, 20, 1_000, 100_000);
            // IPC: nothing but the peers moves the data, so spin, then yield for a long while
            // (~100 ms; a yield leaves the core to others) before parking: a parked thread wakes
            // 50+ us late on Linux. UDP: the driver's threads move the data and need the cores,
            // so park soon and briefly. Chosen from bench alltoall on 2 cores.
            default -> allIpc
                    ? new BackoffIdleStrategy(100, 100_000, 10_000, 1_000_000)
                    : new BackoffIdleStrategy(100, 10, 1_000, 20_000);
        };
    }
}
