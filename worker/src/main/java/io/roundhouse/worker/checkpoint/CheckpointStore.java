package io.roundhouse.worker.checkpoint;

import java.io.IOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * Where checkpoints live, addressed by paths relative to a root ({@code step-000120/shard-0.bin}).
 * Every write goes to a temporary name and is renamed into place, so a reader never sees half a
 * file. {@link #local} is a folder on this machine; the Spark driver supplies a Hadoop FileSystem
 * one (file://, hdfs://, s3a://).
 */
public interface CheckpointStore {
    /** Writes {@code data} to {@code rel} atomically (temporary name, then rename). */
    void write(String rel, byte[] data) throws IOException;

    /** The whole file; {@link NoSuchFileException} when it is missing. */
    byte[] read(String rel) throws IOException;

    boolean exists(String rel) throws IOException;

    /** Names of the folders directly under the root. */
    List<String> folders() throws IOException;

    /** Deletes folder {@code rel} and everything in it. */
    void deleteFolder(String rel) throws IOException;

    /** The full address of {@code rel}, for messages. */
    String describe(String rel);

    /** A folder on this machine, by its path. */
    static CheckpointStore local(String root) {
        return local(Path.of(root));
    }

    /** A folder on this machine. */
    static CheckpointStore local(Path root) {
        return new CheckpointStore() {
            @Override
            public void write(String rel, byte[] data) throws IOException {
                Path target = root.resolve(rel);
                Files.createDirectories(target.getParent());
                Path tmp = target.resolveSibling(target.getFileName() + ".tmp");
                try {
                    Files.write(tmp, data);
                } catch (IOException e) {
                    Files.deleteIfExists(tmp);  // a full disk leaves no partial file behind
                    throw e;
                }
                try {
                    Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                } catch (AtomicMoveNotSupportedException e) {
                    Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
                }
            }

            @Override
            public byte[] read(String rel) throws IOException {
                return Files.readAllBytes(root.resolve(rel));
            }

            @Override
            public boolean exists(String rel) {
                return Files.exists(root.resolve(rel));
            }

            @Override
            public List<String> folders() throws IOException {
                List<String> out = new ArrayList<>();
                if (!Files.isDirectory(root)) {
                    return out;
                }
                try (Stream<Path> s = Files.list(root)) {
                    s.filter(Files::isDirectory).forEach(p -> out.add(p.getFileName().toString()));
                }
                return out;
            }

            @Override
            public void deleteFolder(String rel) throws IOException {
                Path dir = root.resolve(rel);
                if (!Files.exists(dir)) {
                    return;
                }
                try (Stream<Path> s = Files.walk(dir)) {
                    for (Path p : s.sorted(java.util.Comparator.reverseOrder()).toList()) {
                        Files.delete(p);
                    }
                }
            }

            @Override
            public String describe(String rel) {
                return root.resolve(rel).toString();
            }
        };
    }
}
