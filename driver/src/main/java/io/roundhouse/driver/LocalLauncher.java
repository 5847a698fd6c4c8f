package io.roundhouse.driver;

import io.roundhouse.comms.CommsConfig;
import io.roundhouse.comms.EmbeddedMediaDriver;
import io.roundhouse.comms.Transport;
import io.roundhouse.worker.checkpoint.CheckpointStore;
import io.roundhouse.worker.config.ConfigKeys;
import io.roundhouse.worker.config.JobConfig;
import io.roundhouse.worker.train.RunCheckpoints;
import io.roundhouse.worker.train.RunFiles;
import io.roundhouse.worker.train.Trainer;
import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Runs W workers as separate JVMs on this host, without Spark: the rendezvous is static (the
 * launcher picks every endpoint, IPC or free UDP ports on loopback, and hands each worker its rank
 * and the list). Each worker's output goes to {@code worker-<r>.log} in the run directory; rank 0's
 * is echoed here too. When a worker fails, the others fail within {@code comms.timeoutMs} with an
 * error naming it; the launcher waits that long, then stops whatever is left and reports every
 * worker's fate. Killing the launcher stops the workers.
 *
 * <p>Over IPC the launcher hosts the media driver the workers share (as one would per host); over
 * UDP every worker runs its own, as it would on its own host.
 */
public final class LocalLauncher {
    private static final int TAIL_LINES = 200;  // enough for a stack trace and its causes

    private final JobConfig config;
    private final PrintWriter out;
    private final PrintWriter err;

    public LocalLauncher(JobConfig config, PrintWriter out, PrintWriter err) {
        this.config = config;
        this.out = out;
        this.err = err;
    }

    /** What happened to one worker. */
    private static final class Worker {
        final int rank;
        final Process process;
        final Path log;
        final Deque<String> tail = new ArrayDeque<>();
        final Thread pump;

        Worker(int rank, Process process, Path log, Thread pump) {
            this.rank = rank;
            this.process = process;
            this.log = log;
            this.pump = pump;
        }

        synchronized void remember(String line) {
            if (tail.size() == TAIL_LINES) {
                tail.removeFirst();
            }
            tail.addLast(line);
        }

        synchronized List<String> tail() {
            return new ArrayList<>(tail);
        }
    }

    /** Launches the workers, waits for them, and returns the exit code (0 when every worker succeeded). */
    public int run() throws IOException, InterruptedException {
        boolean auto = "auto".equals(config.get(ConfigKeys.COMMS_TRANSPORT));
        // The launcher's workers share this host: comms.transport=auto is IPC on every link.
        JobConfig config = auto ? this.config.with(java.util.Map.of(ConfigKeys.COMMS_TRANSPORT.name(), "ipc"))
                : this.config;
        int w = config.get(ConfigKeys.WORKERS);
        new Trainer(config, new java.io.PrintStream(java.io.OutputStream.nullOutputStream())).preflight();
        // A checkpoint that cannot be resumed is refused here, once, not by every worker.
        RunCheckpoints.verifyResume(config, null, CheckpointStore::local);
        long token = CommsConfig.randomSessionToken();
        CommsConfig comms = JobComms.config(config, token);
        List<String> endpoints = endpoints(comms.transport(), w);
        Path runDir = RunFiles.createRunDir(Path.of(config.get(ConfigKeys.OUTPUT_DIR)));
        Path conf = runDir.resolve("config.conf");
        RunFiles.writeAtomically(conf, config.describe());
        String jobKey = "local-" + ProcessHandle.current().pid() + "-" + runDir.getFileName();
        out.printf("launching %d workers over %s%s (%s); run directory %s%n", w, comms.transport().name().toLowerCase(),
                auto ? " (comms.transport=auto: one host)" : "", String.join(", ", endpoints), runDir);

        // IPC: the workers join this JVM's media driver. UDP: each starts its own, all in this
        // host's Aeron folder, checked together first (each driver's own check sees the room the
        // others have not taken yet).
        if (comms.transport() != Transport.IPC) {
            EmbeddedMediaDriver.checkSpace(comms, comms.aeronDirBase(), w, 1, w);
        }
        EmbeddedMediaDriver driver = comms.transport() == Transport.IPC
                ? EmbeddedMediaDriver.acquire(comms, jobKey, w, w, 0) : null;
        List<Worker> workers = new java.util.concurrent.CopyOnWriteArrayList<>();  // the shutdown hook reads it
        Thread reaper = new Thread(() -> workers.forEach(k -> k.process.destroyForcibly()), "roundhouse-launcher-stop");
        Runtime.getRuntime().addShutdownHook(reaper);
        try {
            for (int r = 0; r < w; r++) {
                workers.add(start(r, w, endpoints, jobKey, token, runDir, conf));
            }
            writeLaunchFile(runDir, comms.transport(), endpoints, workers);
            return await(workers, config.get(ConfigKeys.COMMS_TIMEOUT_MS));
        } finally {
            workers.forEach(k -> k.process.destroyForcibly());
            for (Worker k : workers) {
                k.process.waitFor();
                k.pump.join(2_000);
            }
            try {
                Runtime.getRuntime().removeShutdownHook(reaper);
            } catch (IllegalStateException shuttingDown) {
                // the hook is running already
            }
            if (driver != null) {
                driver.close();
            }
        }
    }

    private static List<String> endpoints(Transport t, int w) throws IOException {
        List<String> eps = new ArrayList<>();
        if (t == Transport.IPC) {
            for (int r = 0; r < w; r++) {
                eps.add("ipc");
            }
            return eps;
        }
        // Free ports on loopback, held together so no two are the same, released just before use.
        List<DatagramSocket> held = new ArrayList<>();
        try {
            for (int r = 0; r < w; r++) {
                DatagramSocket s = new DatagramSocket(0, InetAddress.getLoopbackAddress());
                held.add(s);
                eps.add("127.0.0.1:" + s.getLocalPort());
            }
        } finally {
            held.forEach(DatagramSocket::close);
        }
        return eps;
    }

    private Worker start(int rank, int w, List<String> endpoints, String jobKey, long token, Path runDir, Path conf)
            throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add(ProcessHandle.current().info().command().orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
        for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
            // The launcher's own JVM settings (heap, --add-exports/--add-opens, system properties),
            // but not a debugger or agent port that a second JVM could not bind.
            if (!a.startsWith("-agentlib") && !a.startsWith("-javaagent") && !a.startsWith("-Xrunjdwp")) {
                cmd.add(a);
            }
        }
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), RoundhouseCli.class.getName(), "worker",
                "--rank", String.valueOf(rank), "--endpoints", String.join(",", endpoints), "--job-key", jobKey,
                "--session-token", String.valueOf(token), "--run-dir", runDir.toString(), "-c", conf.toString()));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        // BLAS threads: the host's cores shared by the workers, so W workers never oversubscribe it.
        int threads = Math.max(1, Runtime.getRuntime().availableProcessors() / w);
        pb.environment().putIfAbsent("OPENBLAS_NUM_THREADS", String.valueOf(threads));
        Process p = pb.start();
        Path log = runDir.resolve("worker-" + rank + ".log");
        Worker[] self = new Worker[1];
        Thread pump = new Thread(() -> pump(p, log, rank == 0 ? out : null, self), "roundhouse-worker-" + rank + "-output");
        Worker k = new Worker(rank, p, log, pump);
        self[0] = k;
        pump.setDaemon(true);
        pump.start();
        return k;
    }

    /** Copies a worker's output to its log (and, for rank 0, to the console), keeping the last lines. */
    private static void pump(Process p, Path log, PrintWriter echo, Worker[] self) {
        try (BufferedReader in = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
             BufferedWriter file = Files.newBufferedWriter(log, StandardCharsets.UTF_8)) {
            for (String line = in.readLine(); line != null; line = in.readLine()) {
                file.write(line);
                file.newLine();
                file.flush();
                self[0].remember(line);
                if (echo != null) {
                    echo.println(line);
                    echo.flush();
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot copy a worker's output to " + log, e);
        }
    }

    private static void writeLaunchFile(Path runDir, Transport t, List<String> endpoints, List<Worker> workers)
            throws IOException {
        Map<String, Object> launch = new LinkedHashMap<>();
        launch.put("transport", t.name().toLowerCase());
        launch.put("endpoints", endpoints);
        launch.put("pids", workers.stream().map(k -> k.process.pid()).toList());
        launch.put("launcherPid", ProcessHandle.current().pid());
        RunFiles.writeAtomically(runDir.resolve("launch.json"),
                new com.fasterxml.jackson.databind.ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(launch)
                        + "\n");
    }

    /**
     * Waits for every worker. After the first failure the others get {@code timeoutMs} plus a
     * margin to notice and fail on their own; then they are stopped.
     */
    private int await(List<Worker> workers, long timeoutMs) throws InterruptedException {
        long deadline = Long.MAX_VALUE;
        Worker first = null;
        while (true) {
            boolean running = false;
            for (Worker k : workers) {
                if (k.process.isAlive()) {
                    running = true;
                } else if (first == null && k.process.exitValue() != 0) {
                    first = k;
                    deadline = System.nanoTime() + (timeoutMs + 5_000) * 1_000_000;
                }
            }
            if (!running || System.nanoTime() > deadline) {
                break;
            }
            Thread.sleep(50);
        }
        for (Worker k : workers) {
            if (k.process.isAlive()) {
                k.process.destroyForcibly();
            }
        }
        if (first == null) {
            return 0;
        }
        for (Worker k : workers) {
            k.process.waitFor();
            k.pump.join(2_000);
        }
        String own = first.tail().stream().filter(l -> l.startsWith("error: ") && !l.equals(RoundhouseCli.BUG_HEADLINE))
                .findFirst().orElse(null);
        if (own != null && first.process.exitValue() <= 2) {
            // The worker named the user's error itself (WorkerCommand): that line is the whole story.
            err.println(own);
            err.println("  every worker's output is in " + first.log.getParent() + "/worker-<rank>.log");
            err.flush();
            return first.process.exitValue();
        }
        err.printf("error: worker %d (pid %d) %s; the job failed%n", first.rank, first.process.pid(), fate(first));
        for (Worker k : workers) {
            if (k != first && k.process.exitValue() != 0) {
                err.printf("  worker %d %s%n", k.rank, fate(k));
            }
            if (k.process.exitValue() != 0) {
                for (String line : causes(k.tail())) {
                    err.printf("  worker %d: %s%n", k.rank, line);
                }
            }
        }
        err.println("  every worker's output is in " + first.log.getParent() + "/worker-<rank>.log");
        err.flush();
        return 1;
    }

    /**
     * What a worker's last lines say went wrong: its "error:" lines, or an uncaught exception's
     * headline and causes (not the stack frames, which would push them out); the last 8 such lines.
     */
    static List<String> causes(List<String> tail) {
        List<String> found = new ArrayList<>();
        for (String line : tail) {
            boolean exception = !line.isEmpty() && !Character.isWhitespace(line.charAt(0))
                    && (line.startsWith("Caused by:") || line.matches("(Exception in thread .*|[\\w.$]+(Exception|Error)(: .*)?)"));
            if (line.startsWith("error:") || exception) {
                found.add(line);
            }
        }
        return found.subList(Math.max(0, found.size() - 8), found.size());
    }

    private static String fate(Worker k) {
        int code = k.process.exitValue();
        if (code > 128) {
            return "was killed (signal " + (code - 128) + ")";
        }
        return "exited with code " + code;
    }
}
