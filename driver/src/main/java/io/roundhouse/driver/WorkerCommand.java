package io.roundhouse.driver;

import io.roundhouse.comms.Collectives;
import io.roundhouse.comms.CommsConfig;
import io.roundhouse.comms.EmbeddedMediaDriver;
import io.roundhouse.comms.Member;
import io.roundhouse.comms.Transport;
import io.roundhouse.worker.config.JobConfig;
import io.roundhouse.worker.train.Trainer;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code roundhouse worker}: one worker of a group, started by a launcher ({@link LocalLauncher},
 * later the Spark barrier stage) with its rank and every worker's endpoint. Joins the group, trains,
 * and exits; a peer that dies or stalls makes it fail with an error naming that peer.
 */
@Command(name = "worker", hidden = true, mixinStandardHelpOptions = true,
        description = "Run one worker of a group (started by 'roundhouse train' when workers > 1).")
final class WorkerCommand implements Callable<Integer> {
    @Mixin
    ConfigOptions options;

    @Option(names = "--rank", required = true, description = "this worker's rank, 0..W-1")
    int rank;

    @Option(names = "--endpoints", required = true, split = ",",
            description = "every worker's endpoint in rank order: 'ipc' or host:port (UDP)")
    List<String> endpoints;

    @Option(names = "--job-key", required = true, description = "names the job's Aeron directory")
    String jobKey;

    @Option(names = "--session-token", required = true, description = "the job's session token")
    long token;

    @Option(names = "--run-dir", description = "the run directory rank 0 writes (created by the launcher)")
    Path runDir;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        JobConfig config = options.resolve();
        CommsConfig comms = JobComms.config(config, token);
        PrintStream console = new PrintStream(new WriterOutputStream(spec.commandLine().getOut()), true);
        // Over IPC the launcher hosts the media driver and every worker attaches to it; over UDP
        // every worker runs its own, as it would on its own host.
        try (Member m = Member.join(comms, comms.transport() == Transport.IPC ? EmbeddedMediaDriver.attach(comms, jobKey)
                : EmbeddedMediaDriver.acquire(comms, jobKey + "-w" + rank, 1, endpoints.size(), 0), rank, endpoints)) {
            new Trainer(config, console, new Collectives(m), rank == 0 ? runDir : null).run();
        } catch (RuntimeException e) {
            Throwable user = RoundhouseCli.userError(e);
            if (user == null) {
                throw e;  // a bug: the command line prints its trace
            }
            console.flush();
            spec.commandLine().getErr().println("error: worker " + rank + ": " + user.getMessage());
            return RoundhouseCli.exitCode(user);
        }
        return 0;
    }
}
