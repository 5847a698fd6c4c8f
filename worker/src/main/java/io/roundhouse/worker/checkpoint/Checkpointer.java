package io.roundhouse.worker.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.roundhouse.worker.model.Param;
import io.roundhouse.worker.model.ParamStore;
import io.roundhouse.worker.parallel.ExpertPlacement;
import io.roundhouse.worker.parallel.WorkerGroup;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.zip.CRC32;

/**
 * Checkpoints of a model spread over W workers: at step s each worker writes one shard file,
 * {@code step-<s>/shard-<rank>.bin}, holding the dense parameters (rank 0 only) and the experts it
 * is the first host of, keyed by global expert id, each with its AdamW moments; then rank 0, once
 * it has every shard's description, writes {@code step-<s>/manifest.json}: the commit point. A
 * folder without a manifest is an incomplete checkpoint and is never read. Because shards are keyed
 * by global expert, a checkpoint written by W workers can be read by any other number.
 *
 * <p>Shard format (big-endian): magic {@code RHK1}, version, step, AdamW step count, entry count;
 * per entry the parameter name (UTF-8, length-prefixed), the global expert id (−1 for dense), the
 * value count n, then n values, n first moments, n second moments; last a CRC32 of everything
 * before it.
 */
public final class Checkpointer {
    /** The model settings' key for the kind of model (config key model.kind). */
    private static final String KIND = "model.kind";

    private static final int MAGIC = 0x52484B31;  // "RHK1"
    private static final int VERSION = 1;
    private static final ObjectMapper JSON = new ObjectMapper();

    private final CheckpointStore store;
    private final WorkerGroup group;
    private final ParamStore params;
    private final Map<String, String> model;
    private final Map<String, String> settings = new TreeMap<>();
    private final Committer committer;

    /** Commits step folder {@code dir} by writing its manifest (the commit point). */
    public interface Committer {
        void commit(String dir, byte[] manifest) throws IOException;
    }

    /**
     * @param model the settings that fix the parameters' shapes (a checkpoint of another model is
     *              refused, naming the settings that differ)
     */
    public Checkpointer(CheckpointStore store, WorkerGroup group, ParamStore params, Map<String, String> model) {
        this(store, group, params, model, 0);
    }

    /** @param keep how many checkpoints to keep, the newest (0: all) */
    public Checkpointer(CheckpointStore store, WorkerGroup group, ParamStore params, Map<String, String> model,
                        int keep) {
        this(store, group, params, model, (dir, manifest) -> commit(store, dir, manifest, keep));
    }

    /**
     * @param committer what rank 0 does with a step's manifest once every shard is written (the
     *                  Spark driver commits it; otherwise {@link #commit} into the store)
     */
    public Checkpointer(CheckpointStore store, WorkerGroup group, ParamStore params, Map<String, String> model,
                        Committer committer) {
        this.committer = committer;
        this.store = store;
        this.group = group;
        this.params = params;
        this.model = new TreeMap<>(model);
    }

    /**
     * Also records {@code settings} in each manifest: settings a checkpoint may be resumed under
     * with other values (such as {@code model.precision}: the saved weights are fp32 either way),
     * which {@link #load} reports instead of refusing.
     */
    public Checkpointer recording(Map<String, String> settings) {
        this.settings.putAll(settings);
        return this;
    }

    /**
     * Where training continues from a checkpoint.
     *
     * @param changed the recorded settings that differ here, one "key = here, was in the
     *                checkpoint" each (empty: none, or the checkpoint recorded none)
     */
    public record Restored(String folder, int step, int adamSteps, int workers, List<String> changed) {
    }

    public static String folder(int step) {
        return String.format("step-%08d", step);
    }

    private static boolean isExpert(Param p) {
        return p.expert();
    }

    /** Writes this worker's shard of step {@code step}; rank 0 commits the manifest. A collective. */
    public String save(int step, int adamSteps) throws IOException {
        ExpertPlacement placement = group.placement();
        int rank = group.rank();
        String dir = folder(step);
        List<Param> all = params.all();
        List<Object[]> entries = new ArrayList<>();  // {param, expert, local index}
        List<Integer> experts = new ArrayList<>();
        for (int i = 0; i < placement.expertCount(rank); i++) {
            int e = placement.firstExpert(rank) + i;
            if (placement.hosts(e)[0] == rank) {  // one copy of each replicated expert
                experts.add(e);
            }
        }
        for (Param p : all) {
            if (!isExpert(p)) {
                if (rank == 0) {
                    entries.add(new Object[] {p, -1, 0});
                }
            } else {
                for (int e : experts) {
                    entries.add(new Object[] {p, e, e - placement.firstExpert(rank)});
                }
            }
        }
        byte[] bytes = encode(step, adamSteps, entries, placement.expertCount(rank));
        String file = dir + "/shard-" + rank + ".bin";
        try {
            store.write(file, bytes);
        } catch (IOException e) {
            throw notWritten(store, file, e);
        }
        Map<String, Object> info = new LinkedHashMap<>();
        info.put("file", "shard-" + rank + ".bin");
        info.put("bytes", bytes.length);
        info.put("dense", rank == 0);
        info.put("experts", experts);
        List<String> infos = group.gatherStrings(JSON.writeValueAsString(info));
        if (rank == 0) {
            Map<String, Object> manifest = new LinkedHashMap<>();
            manifest.put("format", VERSION);
            manifest.put("step", step);
            manifest.put("adamSteps", adamSteps);
            manifest.put("workers", group.size());
            manifest.put("model", model);
            manifest.put("settings", settings);
            List<JsonNode> shards = new ArrayList<>();
            for (String s : infos) {
                shards.add(JSON.readTree(s));
            }
            manifest.put("shards", shards);
            try {
                committer.commit(dir, JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(manifest));
            } catch (IOException e) {
                throw notWritten(store, dir + "/manifest.json", e);
            }
        }
        return store.describe(dir);
    }

    /** A shard or manifest that could not be written: the checkpoint stays incomplete, older ones intact. */
    private static CheckpointException notWritten(CheckpointStore store, String file, IOException e) {
        return CheckpointException.notWritten("cannot write checkpoint file " + store.describe(file) + ": "
                + io.roundhouse.worker.UserException.reason(e) + ". That checkpoint stays incomplete and earlier "
                + "ones are intact (resume from them with --resume); free space there or set checkpoint.dir", e);
    }

    /**
     * Writes {@code dir/manifest.json} (atomically): from then on the checkpoint is complete. Only
     * then do older checkpoints go, all but the newest {@code keep} (0: none go).
     */
    public static void commit(CheckpointStore store, String dir, byte[] manifest, int keep) throws IOException {
        store.write(dir + "/manifest.json", manifest);
        if (keep > 0) {
            List<String> steps = new ArrayList<>();
            for (String f : store.folders()) {
                if (f.matches("step-\\d{8}") && f.compareTo(dir) < 0) {
                    steps.add(f);
                }
            }
            java.util.Collections.sort(steps);
            for (int i = 0; i < steps.size() - (keep - 1); i++) {
                store.deleteFolder(steps.get(i));
            }
        }
    }

    private byte[] encode(int step, int adamSteps, List<Object[]> entries, int localExperts) {
        long size = 20;
        for (Object[] en : entries) {
            Param p = (Param) en[0];
            int n = isExpert(p) ? p.value().size() / localExperts : p.value().size();
            size += 2 + p.name().getBytes(StandardCharsets.UTF_8).length + 8 + 12L * n;
        }
        if (size + 8 > Integer.MAX_VALUE) {
            throw new CheckpointException("a checkpoint shard of " + size + " bytes is more than one file of this "
                    + "format holds (2 GiB); use more workers");
        }
        ByteBuffer b = ByteBuffer.allocate((int) size + 8);
        b.putInt(MAGIC).putInt(VERSION).putInt(step).putInt(adamSteps).putInt(entries.size());
        for (Object[] en : entries) {
            Param p = (Param) en[0];
            int expert = (int) en[1];
            int local = (int) en[2];
            int n = isExpert(p) ? p.value().size() / localExperts : p.value().size();
            byte[] name = p.name().getBytes(StandardCharsets.UTF_8);
            b.putShort((short) name.length).put(name).putInt(expert).putInt(n);
            for (float[] all : new float[][] {read(p.value()), read(p.m()), read(p.v())}) {
                b.asFloatBuffer().put(all, local * n, n);
                b.position(b.position() + 4 * n);
            }
        }
        CRC32 crc = new CRC32();
        crc.update(b.array(), 0, b.position());
        b.putLong(crc.getValue());
        return b.array();
    }

    private float[] read(io.roundhouse.kernels.Tensor t) {
        float[] v = new float[t.size()];
        params.backend().read(t, v);
        return v;
    }

    /** The complete checkpoint (manifest present) with the highest step in {@code store}, or null. */
    public static String latestComplete(CheckpointStore store) throws IOException {
        String best = null;
        for (String f : store.folders()) {
            if (f.matches("step-\\d{8}") && store.exists(f + "/manifest.json") && (best == null || f.compareTo(best) > 0)) {
                best = f;
            }
        }
        return best;
    }

    /**
     * Checks step folder {@code dir} without loading it: its manifest, that it was written by a
     * model with these {@code model} settings, and every shard it lists (format, step, checksum).
     * Whoever starts the workers (the command line, the launcher, the Spark driver) runs this
     * first, so a checkpoint that cannot be resumed is refused once, before anything is written,
     * instead of by every worker (in Spark: in every task of every stage attempt).
     *
     * @throws CheckpointException naming the file and what is wrong
     */
    public static void verify(CheckpointStore store, String dir, Map<String, String> model) {
        JsonNode manifest = manifest(store, dir, model);
        for (JsonNode s : manifest.path("shards")) {
            decode(store, dir + "/" + s.path("file").asText(), manifest);
        }
    }

    /** The manifest of step folder {@code dir}, checked against {@code model}. */
    private static JsonNode manifest(CheckpointStore store, String dir, Map<String, String> model) {
        String manifestFile = dir + "/manifest.json";
        JsonNode manifest;
        try {
            manifest = JSON.readTree(store.read(manifestFile));
        } catch (NoSuchFileException e) {
            throw new CheckpointException("checkpoint " + store.describe(dir) + " has no manifest.json: it is "
                    + "incomplete (its writer stopped before every shard was in); resume from an earlier one");
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new CheckpointException("checkpoint manifest " + store.describe(manifestFile) + " is not valid JSON ("
                    + e.getOriginalMessage() + "): damaged, or not a Roundhouse checkpoint's; name another step-NNNNNNNN "
                    + "folder (resume from an earlier checkpoint)", e);
        } catch (IOException e) {
            throw new CheckpointException("cannot read checkpoint manifest " + store.describe(manifestFile) + ": "
                    + io.roundhouse.worker.UserException.reason(e) + "; check the path and its permissions", e);
        }
        List<String> differ = new ArrayList<>();
        int format = manifest.path("format").asInt(-1);
        if (format > VERSION && manifest.path("model").isObject()) {
            throw new CheckpointException("checkpoint " + store.describe(dir) + " is of format " + format + ", newer "
                    + "than this Roundhouse reads (format " + VERSION + "): resume it with the version that wrote it");
        }
        if (format != VERSION || !manifest.path("model").isObject()) {
            throw new CheckpointException(store.describe(manifestFile) + " is not the manifest of a Roundhouse "
                    + "checkpoint (format " + VERSION + "); name a step-NNNNNNNN folder a run wrote (by default in its "
                    + "run directory's checkpoints/), or the folder that holds them");
        }
        JsonNode saved = manifest.path("model");
        // The kind is recorded for every kind but the first (a classifier's manifest has none), so
        // it is compared both ways: a classifier's run must not load another kind's checkpoint.
        String kind = model.getOrDefault(KIND, "classifier");
        String savedKind = saved.path(KIND).asText("classifier");
        if (!model.isEmpty() && !kind.equals(savedKind)) {  // an empty model: read, not compared
            differ.add(KIND + " = " + kind + " here, " + savedKind + " in the checkpoint");
        }
        for (Map.Entry<String, String> m : model.entrySet()) {
            if (m.getKey().equals(KIND)) {
                continue;
            }
            String was = saved.path(m.getKey()).asText("");  // a setting newer than the checkpoint: ""
            if (!m.getValue().equals(was)) {
                differ.add(m.getKey() + " = " + m.getValue() + " here, " + was + " in the checkpoint");
            }
        }
        if (!differ.isEmpty()) {
            throw new CheckpointException("checkpoint " + store.describe(manifestFile) + " was written by another model: "
                    + String.join("; ", differ) + ". Resume with the model settings it was written with, or start fresh");
        }
        return manifest;
    }

    /** The model settings step folder {@code dir}'s manifest records (see {@link #verify}). */
    public static Map<String, String> savedModel(CheckpointStore store, String dir) {
        JsonNode saved = manifest(store, dir, Map.of()).path("model");
        Map<String, String> m = new TreeMap<>();
        saved.fields().forEachRemaining(e -> m.put(e.getKey(), e.getValue().asText()));
        return m;
    }

    /**
     * The settings step folder {@code dir}'s manifest records besides the model's (see
     * {@link #recording}); a setting it predates is absent.
     */
    public static Map<String, String> savedSettings(CheckpointStore store, String dir) {
        JsonNode saved = manifest(store, dir, Map.of()).path("settings");
        Map<String, String> m = new TreeMap<>();
        saved.fields().forEachRemaining(e -> m.put(e.getKey(), e.getValue().asText()));
        return m;
    }

    /** Loads step folder {@code dir} into this worker's share of the model. */
    public Restored load(String dir) {
        String manifestFile = dir + "/manifest.json";
        JsonNode manifest = manifest(store, dir, model);
        Map<Integer, String> expertShard = new HashMap<>();
        String denseShard = null;
        for (JsonNode s : manifest.path("shards")) {
            if (s.path("dense").asBoolean()) {
                denseShard = s.path("file").asText();
            }
            for (JsonNode e : s.path("experts")) {
                expertShard.put(e.asInt(), s.path("file").asText());
            }
        }
        ExpertPlacement placement = group.placement();
        int rank = group.rank();
        int first = placement.firstExpert(rank);
        int local = placement.expertCount(rank);
        Map<String, Map<String, float[][]>> cache = new HashMap<>();
        for (Param p : params.all()) {
            int n = isExpert(p) ? p.value().size() / local : p.value().size();
            float[][] into = {new float[p.value().size()], new float[p.value().size()], new float[p.value().size()]};
            for (int i = 0; i < (isExpert(p) ? local : 1); i++) {
                int expert = isExpert(p) ? first + i : -1;
                String file = isExpert(p) ? expertShard.get(expert) : denseShard;
                if (file == null) {
                    throw new CheckpointException("checkpoint " + store.describe(manifestFile) + " has no shard holding "
                            + (expert < 0 ? "the dense parameters" : "expert " + expert) + "; it is damaged");
                }
                Map<String, float[][]> shard = cache.computeIfAbsent(file, f -> decode(store, dir + "/" + f, manifest));
                float[][] got = shard.get(p.name() + "#" + expert);
                if (got == null || got[0].length != n) {
                    throw new CheckpointException("checkpoint shard " + store.describe(dir + "/" + file) + " lacks "
                            + p.name() + (expert < 0 ? "" : " of expert " + expert) + " with " + n + " values");
                }
                for (int k = 0; k < 3; k++) {
                    System.arraycopy(got[k], 0, into[k], i * n, n);
                }
            }
            params.backend().write(p.value(), into[0]);
            params.backend().write(p.m(), into[1]);
            params.backend().write(p.v(), into[2]);
        }
        List<String> changed = new ArrayList<>();
        for (Map.Entry<String, String> e : settings.entrySet()) {
            JsonNode was = manifest.path("settings").path(e.getKey());
            if (was.isTextual() && !was.asText().equals(e.getValue())) {
                changed.add(e.getKey() + " = " + e.getValue() + " here, " + was.asText() + " in the checkpoint");
            }
        }
        return new Restored(store.describe(dir), manifest.path("step").asInt(), manifest.path("adamSteps").asInt(),
                manifest.path("workers").asInt(), changed);
    }

    /** One shard's entries, keyed {@code name#expert}; checks magic, version, length and CRC. */
    private static Map<String, float[][]> decode(CheckpointStore store, String rel, JsonNode manifest) {
        byte[] bytes;
        try {
            bytes = store.read(rel);
        } catch (NoSuchFileException e) {
            throw new CheckpointException("checkpoint shard " + store.describe(rel) + " is missing, though the "
                    + "manifest lists it; resume from an earlier checkpoint");
        } catch (IOException e) {
            throw new CheckpointException("cannot read checkpoint shard " + store.describe(rel) + ": "
                    + io.roundhouse.worker.UserException.reason(e) + "; check its permissions", e);
        }
        String what = "checkpoint shard " + store.describe(rel);
        if (bytes.length < 28) {
            throw new CheckpointException(what + " is cut short (" + bytes.length + " bytes); resume from an earlier checkpoint");
        }
        CRC32 crc = new CRC32();
        crc.update(bytes, 0, bytes.length - 8);
        ByteBuffer b = ByteBuffer.wrap(bytes);
        if (b.getLong(bytes.length - 8) != crc.getValue()) {
            throw new CheckpointException(what + " is corrupt (its checksum does not match: the file was damaged or "
                    + "cut short); resume from an earlier checkpoint");
        }
        if (b.getInt() != MAGIC || b.getInt() != VERSION) {
            throw new CheckpointException(what + " is not a Roundhouse checkpoint shard of format " + VERSION);
        }
        int step = b.getInt();
        b.getInt();
        if (step != manifest.path("step").asInt()) {
            throw new CheckpointException(what + " belongs to step " + step + ", its manifest to step "
                    + manifest.path("step").asInt());
        }
        int count = b.getInt();
        Map<String, float[][]> out = new HashMap<>();
        // The checksum matched, so the bytes are as written; a shard that still does not parse was
        // written by something else (or checksummed after damage): refused by name, like a bad checksum.
        b.limit(bytes.length - 8);
        try {
            for (int e = 0; e < count; e++) {
                int nameLength = b.getShort() & 0xFFFF;
                byte[] name = new byte[Math.min(nameLength, b.remaining())];
                b.get(name);
                if (name.length != nameLength) {
                    throw new java.nio.BufferUnderflowException();
                }
                int expert = b.getInt();
                int n = b.getInt();
                if (n < 0 || 12L * n > b.remaining()) {
                    throw new java.nio.BufferUnderflowException();
                }
                float[][] v = new float[3][n];
                for (int k = 0; k < 3; k++) {
                    b.asFloatBuffer().get(v[k]);
                    b.position(b.position() + 4 * n);
                }
                out.put(new String(name, StandardCharsets.UTF_8) + "#" + expert, v);
            }
        } catch (java.nio.BufferUnderflowException e) {
            throw new CheckpointException(what + " is malformed (its entries run past its end, though its checksum "
                    + "matches: it was not written by Roundhouse); resume from an earlier checkpoint");
        }
        if (b.remaining() != 0 || count < 0) {
            throw new CheckpointException(what + " is malformed (" + (count < 0 ? "a negative entry count"
                    : b.remaining() + " bytes after its last entry") + ", though its checksum matches: it was not "
                    + "written by Roundhouse); resume from an earlier checkpoint");
        }
        return out;
    }
}
