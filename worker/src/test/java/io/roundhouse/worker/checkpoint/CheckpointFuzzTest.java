package io.roundhouse.worker.checkpoint;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.roundhouse.kernels.Activation;
import io.roundhouse.kernels.GateMode;
import io.roundhouse.kernels.cpu.CpuBackend;
import io.roundhouse.worker.model.ModelSpec;
import io.roundhouse.worker.model.MoeClassifier;
import io.roundhouse.worker.model.NormKind;
import io.roundhouse.worker.parallel.WorkerGroup;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.NoSuchFileException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32;

/**
 * The checkpoint reader fuzzed with Jazzer's coverage guidance ({@code scripts/fuzz}): a manifest
 * or a shard of any bytes is loaded or refused with a {@link CheckpointException}, never another
 * exception, an unbounded allocation or a hang. Shards are fuzzed both as they are and with their
 * checksum made to match, so the fuzzer reaches the decoding behind the checksum. A plain test run
 * replays the inputs kept under this class's {@code Inputs} folder.
 */
class CheckpointFuzzTest {
    private static final String DIR = "step-00000003";
    private static final Map<String, String> MODEL = Map.of("model.dim", "8");
    private static final CpuBackend CPU = new CpuBackend();
    private static final MoeClassifier MODEL_ON_CPU = MoeClassifier.local(CPU, new ModelSpec(6, 3, 8, 1, 2, 1, 4,
            Activation.GELU, NormKind.LAYERNORM, GateMode.TOPK_SOFTMAX, 1.0, 0.1, 0.1, 0.01, 0.001), 1, 4);
    private static final Map<String, byte[]> SAVED = save();

    /** A checkpoint of a small model, saved once into memory. */
    private static Map<String, byte[]> save() {
        Memory store = new Memory(new HashMap<>());
        try {
            new Checkpointer(store, WorkerGroup.single(2), MODEL_ON_CPU.params(), MODEL).save(3, 3);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        return Map.copyOf(store.files);
    }

    @FuzzTest(maxDuration = "25s")
    void anyShardIsLoadedOrRefusedByName(FuzzedDataProvider d) {
        boolean fixChecksum = d.consumeBoolean();
        byte[] shard = d.consumeRemainingAsBytes();
        if (fixChecksum && shard.length >= 8) {
            CRC32 crc = new CRC32();
            crc.update(shard, 0, shard.length - 8);
            ByteBuffer.wrap(shard).putLong(shard.length - 8, crc.getValue());
        }
        loadOrRefuse(DIR + "/shard-0.bin", shard);
    }

    @FuzzTest(maxDuration = "25s")
    void anyManifestIsLoadedOrRefusedByName(byte[] manifest) {
        loadOrRefuse(DIR + "/manifest.json", manifest);
    }

    /** The saved checkpoint with {@code file} replaced by {@code bytes}: verified, then loaded. */
    private static void loadOrRefuse(String file, byte[] bytes) {
        Map<String, byte[]> files = new HashMap<>(SAVED);
        files.put(file, bytes);
        Memory store = new Memory(files);
        try {
            Checkpointer.verify(store, DIR, MODEL);
            new Checkpointer(store, WorkerGroup.single(2), MODEL_ON_CPU.params(), MODEL).load(DIR);
        } catch (CheckpointException expected) {
            // named: the file and what is wrong
        }
    }

    /** A store in memory. */
    private record Memory(Map<String, byte[]> files) implements CheckpointStore {
        @Override
        public void write(String rel, byte[] data) {
            files.put(rel, data.clone());
        }

        @Override
        public byte[] read(String rel) throws IOException {
            byte[] b = files.get(rel);
            if (b == null) {
                throw new NoSuchFileException(rel);
            }
            return b.clone();
        }

        @Override
        public boolean exists(String rel) {
            return files.containsKey(rel);
        }

        @Override
        public List<String> folders() {
            List<String> out = new ArrayList<>();
            for (String f : files.keySet()) {
                String top = f.substring(0, f.indexOf('/'));
                if (!out.contains(top)) {
                    out.add(top);
                }
            }
            return out;
        }

        @Override
        public void deleteFolder(String rel) {
            files.keySet().removeIf(f -> f.startsWith(rel + "/"));
        }

        @Override
        public String describe(String rel) {
            return "memory:" + rel;
        }
    }
}
