package io.roundhouse.comms;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/**
 * A group member in its own JVM, for the killed-peer tests: joins, then runs all-to-alls and
 * all-reduces until killed. Args: transport rank token aeronBase jobKey endpoint...
 */
public final class PeerMain {
    private PeerMain() {
    }

    public static void main(String[] args) {
        Transport t = Transport.valueOf(args[0]);
        int rank = Integer.parseInt(args[1]);
        long token = Long.parseLong(args[2]);
        Path base = Path.of(args[3]);
        String jobKey = args[4];
        List<String> eps = Arrays.asList(Arrays.copyOfRange(args, 5, args.length));
        CommsConfig cfg = CommsConfig.defaults(t, token).withTimeouts(20_000, 20_000).withAeronDirBase(base);
        try (Member m = Member.join(cfg, jobKey, rank, eps, 1)) {
            System.out.println("joined " + rank);
            System.out.flush();
            FailureModesTest.workLoop(new Collectives(m), 0, Integer.MAX_VALUE);
        }
    }
}
