package io.roundhouse.driver.spark;

import io.roundhouse.worker.checkpoint.CheckpointStore;
import io.roundhouse.worker.config.ConfigException;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.NoSuchFileException;
import java.util.ArrayList;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * Checkpoints through the Hadoop FileSystem API, so {@code checkpoint.dir} may be {@code file://},
 * {@code hdfs://} or {@code s3a://} alike (a bare path means the cluster's default file system).
 * Writes go to {@code <name>.tmp} and are renamed into place (on S3A a rename is a copy: the
 * manifest, written last, is still the commit point).
 */
final class HadoopCheckpointStore implements CheckpointStore {
    private final Path root;
    private final FileSystem fs;

    HadoopCheckpointStore(String root, Configuration conf) {
        this.root = new Path(root);
        try {
            this.fs = this.root.getFileSystem(conf);
        } catch (IOException | IllegalArgumentException e) {  // Hadoop says an unknown host with the latter
            Throwable why = e;
            while (why.getCause() != null) {
                why = why.getCause();
            }
            throw new ConfigException("checkpoint folder " + root + ": no file system for it ("
                    + (why instanceof java.net.UnknownHostException ? "unknown host " : "") + why.getMessage()
                    + "); use file://, hdfs:// or s3a:// with the matching Hadoop settings");
        }
    }

    @Override
    public void write(String rel, byte[] data) throws IOException {
        Path target = new Path(root, rel);
        Path tmp = new Path(root, rel + ".tmp");
        try (OutputStream out = fs.create(tmp, true)) {
            out.write(data);
        } catch (IOException e) {
            try {
                fs.delete(tmp, false);  // a full disk leaves no partial file behind
            } catch (IOException ignored) {
                // the write failed already; that is the error to report
            }
            throw e;
        }
        if (fs.exists(target)) {
            fs.delete(target, false);  // a retried attempt rewrites the same step
        }
        if (!fs.rename(tmp, target)) {
            throw new IOException("cannot rename " + tmp + " to " + target);
        }
    }

    @Override
    public byte[] read(String rel) throws IOException {
        Path p = new Path(root, rel);
        try (InputStream in = fs.open(p)) {
            return in.readAllBytes();
        } catch (FileNotFoundException e) {
            throw new NoSuchFileException(p.toString());
        }
    }

    @Override
    public boolean exists(String rel) throws IOException {
        return fs.exists(new Path(root, rel));
    }

    @Override
    public List<String> folders() throws IOException {
        List<String> out = new ArrayList<>();
        if (!fs.exists(root)) {
            return out;
        }
        for (FileStatus s : fs.listStatus(root)) {
            if (s.isDirectory()) {
                out.add(s.getPath().getName());
            }
        }
        return out;
    }

    @Override
    public void deleteFolder(String rel) throws IOException {
        fs.delete(new Path(root, rel), true);
    }

    @Override
    public String describe(String rel) {
        return new Path(root, rel).toString();
    }
}
