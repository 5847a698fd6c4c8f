package io.roundhouse.comms;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * {@code comms.idle=auto}: spin with a core to spare (one per member on the host, the driver's
 * threads, one more), else yield over UDP and back off over IPC; an explicit choice is kept.
 */
class IdleChoiceTest {
    @Test
    void autoFollowsTheCores() {
        assertEquals("busy", IdleChoice.autoIdle(16, 4, 1, false));
        assertEquals("busy", IdleChoice.autoIdle(6, 4, 1, true), "4 members + 1 driver thread + 1 spare");
        assertEquals("yielding", IdleChoice.autoIdle(5, 4, 1, false), "no core to spare, a UDP link");
        assertEquals("backoff", IdleChoice.autoIdle(5, 4, 1, true), "no core to spare, all IPC");
        assertEquals("yielding", IdleChoice.autoIdle(2, 2, 1, false), "this 2-core machine over UDP");
        assertEquals("yielding", IdleChoice.autoIdle(7, 4, 3, false), "dedicated driver threads count");
    }

    @Test
    void membersOnTheHostAndExplicitChoices() {
        CommsConfig udp = CommsConfig.defaults(Transport.UDP, 1);
        int cores = Runtime.getRuntime().availableProcessors();
        // Two of four members on 10.0.0.1: rank 0 counts two on its host.
        List<String> eps = List.of("10.0.0.1:1", "10.0.0.2:1", "10.0.0.1:2", "10.0.0.2:2");
        assertEquals(IdleChoice.autoIdle(cores, 2, 1, false), IdleChoice.idleFor(udp, 0, eps));
        assertEquals(IdleChoice.autoIdle(cores, 2, 1, true),
                IdleChoice.idleFor(CommsConfig.defaults(Transport.IPC, 1), 0, List.of("ipc", "ipc")));
        for (String explicit : List.of("backoff", "yielding", "busy")) {
            assertEquals(explicit, IdleChoice.idleFor(udp.withIdle(explicit), 0, eps));
        }
    }
}
