package io.roundhouse.worker.train;

import io.roundhouse.worker.UserException;
import io.roundhouse.worker.config.ConfigException;
import io.roundhouse.worker.config.ConfigKeys;
import io.roundhouse.worker.config.JobConfig;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;

/** The run directory: checked before anything is written, created once, files written atomically. */
public final class RunFiles {
    private RunFiles() {
    }

    /**
     * Fails, naming the key and the fix, when a folder the job writes on this machine cannot be:
     * {@code output.dir}, {@code comms.aeronDir}, and {@code checkpoint.dir} when it is a local
     * path ({@code hdfs://}, {@code s3a://} ... are checked by their file system when used).
     */
    public static void checkFolders(JobConfig config) {
        checkWritable(ConfigKeys.OUTPUT_DIR.name(), Path.of(config.get(ConfigKeys.OUTPUT_DIR)));
        String aeron = config.get(ConfigKeys.COMMS_AERON_DIR);
        if (!aeron.isEmpty()) {
            checkWritable(ConfigKeys.COMMS_AERON_DIR.name(), Path.of(aeron));
        }
        String checkpoints = config.get(ConfigKeys.CHECKPOINT_DIR);
        if (!checkpoints.isEmpty() && (!checkpoints.contains(":") || checkpoints.startsWith("file:"))) {
            checkWritable(ConfigKeys.CHECKPOINT_DIR.name(), Path.of(checkpoints.replaceFirst("^file:(//)?", "")));
        }
    }

    /**
     * Fails, naming the folder and the fix, when {@code dir} (the value of {@code key}) cannot be
     * created or written. Writes nothing.
     */
    static void checkWritable(String key, Path dir) {
        Path p = dir.toAbsolutePath();
        while (p != null && !Files.exists(p)) {
            p = p.getParent();
        }
        if (p == null) {
            throw new ConfigException(key + " " + dir + ": no existing parent folder");
        }
        if (!Files.isDirectory(p)) {
            throw new ConfigException(key + " " + dir + ": " + p + " is a file, not a folder; set " + key + " to a folder");
        }
        if (!Files.isWritable(p)) {
            throw new ConfigException(key + " " + dir + ": cannot write in " + p + "; set " + key
                    + " to a folder you can write");
        }
    }

    /** Creates {@code outputDir/run-yyyyMMdd-HHmmss[-n]}. */
    public static Path createRunDir(Path outputDir) {
        String base = "run-" + LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss"));
        try {
            Files.createDirectories(outputDir);
            for (int n = 0; ; n++) {
                Path dir = outputDir.resolve(n == 0 ? base : base + "-" + n);
                try {
                    return Files.createDirectory(dir);
                } catch (java.nio.file.FileAlreadyExistsException e) {
                    // another run started this second: take the next suffix
                }
            }
        } catch (IOException e) {
            throw new ConfigException("output.dir " + outputDir + ": cannot create a run directory ("
                    + UserException.reason(e) + "); set output.dir to a folder you can write");
        }
    }

    /**
     * Writes {@code text} to a temporary file beside {@code target}, then renames it into place: the
     * target is the old text or the new, never a part. A failure (a full disk) leaves the old one.
     *
     * @throws UserException naming the file and the system's reason when it cannot be written
     */
    public static void writeAtomically(Path target, String text) {
        writeAtomically(target, tmp -> Files.writeString(tmp, text, StandardCharsets.UTF_8));
    }

    /** What writes a file's whole content to the path it is given. */
    @FunctionalInterface
    public interface Content {
        void writeTo(Path file) throws IOException;
    }

    /** {@link #writeAtomically(Path, String)} for content that {@code content} writes. */
    public static void writeAtomically(Path target, Content content) {
        Path tmp = target.resolveSibling(target.getFileName() + ".tmp");
        try {
            content.writeTo(tmp);
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException e) {
            try {
                Files.deleteIfExists(tmp);
            } catch (IOException ignored) {
                // the write failed already; that is the error to report
            }
            throw UserException.cannotWrite(target, e);
        }
    }
}
