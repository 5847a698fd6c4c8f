package io.roundhouse.worker;

import io.roundhouse.comms.Collectives;
import io.roundhouse.comms.CommsConfig;
import io.roundhouse.comms.EmbeddedMediaDriver;
import io.roundhouse.comms.Member;
import io.roundhouse.comms.Transport;
import io.roundhouse.worker.config.JobConfig;
import io.roundhouse.worker.train.Trainer;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/** Runs the trainer as W workers on threads of this JVM over Aeron IPC (W = 1: no group). */
public final class TrainerGroups {
    private TrainerGroups() {
    }

    /** Results in rank order; {@code workers} is set in the config. A worker's exception is rethrown. */
    public static List<Trainer.Result> train(Map<String, String> config, int w, Path aeronBase, String tag)
            throws Exception {
        return train(config, w, aeronBase, tag, (rank, t) -> t);
    }

    /** As above, each worker's trainer first passed through {@code customize(rank, trainer)}. */
    public static List<Trainer.Result> train(Map<String, String> config, int w, Path aeronBase, String tag,
                                             java.util.function.BiFunction<Integer, Trainer, Trainer> customize)
            throws Exception {
        Map<String, String> m = new HashMap<>(config);
        m.put("workers", String.valueOf(w));
        JobConfig cfg = JobConfig.of(m);
        if (w == 1) {
            return List.of(customize.apply(0, new Trainer(cfg, new PrintStream(new ByteArrayOutputStream()))).run());
        }
        CommsConfig comms = CommsConfig.defaults(Transport.IPC, 5).withTimeouts(20_000, 20_000).withAeronDirBase(aeronBase)
                .withOverlap(CommsConfig.Overlap.valueOf(m.getOrDefault("comms.overlap", "on").toUpperCase(java.util.Locale.ROOT)));
        List<String> eps = new ArrayList<>();
        for (int r = 0; r < w; r++) {
            eps.add("ipc");
        }
        ExecutorService pool = Executors.newFixedThreadPool(w);
        try (EmbeddedMediaDriver driver = EmbeddedMediaDriver.acquire(comms, tag + "-" + ProcessHandle.current().pid(),
                w, w, 0)) {
            List<Future<Trainer.Result>> futures = new ArrayList<>();
            for (int r = 0; r < w; r++) {
                int rank = r;
                futures.add(pool.submit(() -> {
                    try (Member member = new Member(comms, driver, rank, eps)) {
                        member.connect();
                        return customize.apply(rank, new Trainer(cfg, new PrintStream(new ByteArrayOutputStream()),
                                new Collectives(member), null)).run();
                    }
                }));
            }
            List<Trainer.Result> results = new ArrayList<>();
            for (Future<Trainer.Result> f : futures) {
                try {
                    results.add(f.get(120, TimeUnit.SECONDS));
                } catch (ExecutionException e) {
                    if (e.getCause() instanceof Exception x) {
                        throw x;
                    }
                    throw e;
                }
            }
            return results;
        } finally {
            pool.shutdownNow();
        }
    }

    /** The records of {@code type} in a run's {@code metrics.jsonl}, in order. */
    public static List<com.fasterxml.jackson.databind.JsonNode> records(Path runDir, String type) throws Exception {
        com.fasterxml.jackson.databind.ObjectMapper json = new com.fasterxml.jackson.databind.ObjectMapper();
        List<com.fasterxml.jackson.databind.JsonNode> out = new ArrayList<>();
        for (String line : java.nio.file.Files.readAllLines(runDir.resolve("metrics.jsonl"))) {
            com.fasterxml.jackson.databind.JsonNode n = json.readTree(line);
            if (n.get("type").asText().equals(type)) {
                out.add(n);
            }
        }
        return out;
    }
}
