package io.roundhouse.driver.spark;

import io.roundhouse.comms.Collectives;
import io.roundhouse.comms.CommsConfig;
import io.roundhouse.comms.EmbeddedMediaDriver;
import io.roundhouse.comms.Member;
import io.roundhouse.comms.Transport;
import io.roundhouse.worker.config.ConfigException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.apache.spark.BarrierTaskContext;
import org.apache.spark.BarrierTaskInfo;

/**
 * The tasks of a barrier stage as a comms group: each task's rank is its partition, every task's
 * host and endpoint are gathered through {@link BarrierTaskContext#allGather}, and the media
 * drivers follow the transport (udp: one per worker; ipc: one for all, which needs one host;
 * auto: one per host, IPC within it and UDP between hosts). The Aeron directory and job key are
 * per stage attempt, so a retried stage never meets the old one's files.
 */
final class BarrierGroup implements AutoCloseable {
    final int rank;
    final int workers;
    /** Each rank's host, in rank order. */
    final List<String> hosts;
    final String host;
    final EmbeddedMediaDriver driver;
    final Member member;

    private BarrierGroup(int rank, List<String> hosts, EmbeddedMediaDriver driver, Member member) {
        this.rank = rank;
        this.workers = hosts.size();
        this.hosts = hosts;
        this.host = hosts.get(rank);
        this.driver = driver;
        this.member = member;
    }

    /** Joins this task's stage as a group over {@code cfg}; the member is connected. */
    static BarrierGroup join(BarrierTaskContext ctx, CommsConfig cfg, String appKey) {
        int rank = ctx.partitionId();
        BarrierTaskInfo[] infos = ctx.getTaskInfos();
        int workers = infos.length;
        String host = hostOf(infos[rank].address());
        String endpoint = cfg.transport() == Transport.IPC ? "ipc" : host + ":" + SparkJob.freePort(host);
        String[] gathered = ctx.allGather(host + "|" + endpoint);
        List<String> hosts = new ArrayList<>();
        List<String> endpoints = new ArrayList<>();
        for (String g : gathered) {
            hosts.add(g.substring(0, g.indexOf('|')));
            endpoints.add(g.substring(g.indexOf('|') + 1));
        }
        if (cfg.transport() == Transport.IPC && hosts.stream().anyMatch(h -> !h.equals(host))) {
            throw new ConfigException("comms.transport = ipc needs every worker on one host, but the workers run on "
                    + Arrays.toString(hosts.toArray()) + "; use comms.transport = auto or udp");
        }
        String jobKey = appKey + "-s" + ctx.stageId() + "a" + ctx.stageAttemptNumber();
        int onHost = (int) hosts.stream().filter(host::equals).count();
        String key = switch (cfg.transport()) {
            case UDP -> jobKey + "-w" + rank;
            case AUTO -> jobKey + "-h" + host;
            case IPC -> jobKey;
        };
        int local = switch (cfg.transport()) {
            case UDP -> 1;
            case AUTO -> onHost;
            case IPC -> workers;
        };
        EmbeddedMediaDriver driver = EmbeddedMediaDriver.acquire(cfg, key, local, workers, 0);
        Member member = null;
        try {
            member = new Member(cfg, driver, rank, endpoints);
            member.connect();
            return new BarrierGroup(rank, hosts, driver, member);
        } catch (RuntimeException e) {
            if (member != null) {
                member.close();
            }
            driver.close();
            throw e;
        }
    }

    Collectives collectives() {
        return new Collectives(member);
    }

    @Override
    public void close() {
        try {
            member.close();
        } finally {
            driver.close();
        }
    }

    static String hostOf(String address) {
        int colon = address.lastIndexOf(':');
        return colon > 0 ? address.substring(0, colon) : address;
    }
}
