package io.roundhouse.driver.spark;

import io.roundhouse.worker.data.DataException;
import io.roundhouse.worker.data.TextCorpus;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * A language model's text from any Hadoop FileSystem path ({@code data.text}: a file, a folder whose
 * files are read in name order, or a glob; hdfs://, s3a://, file:), or the built-in King James
 * Bible. The driver checks the path names something; each executor reads it.
 */
final class HadoopText {
    private HadoopText() {
    }

    /** The files {@code text} names, in name order (a data error when none). */
    static List<FileStatus> files(String text, Configuration hadoop) {
        try {
            Path p = new Path(text);
            FileSystem fs = p.getFileSystem(hadoop);
            FileStatus[] matched = fs.globStatus(p);
            List<FileStatus> files = new ArrayList<>();
            if (matched != null) {
                Arrays.sort(matched);
                for (FileStatus s : matched) {
                    if (s.isDirectory()) {
                        FileStatus[] inside = fs.listStatus(s.getPath());
                        Arrays.sort(inside);
                        for (FileStatus f : inside) {
                            if (f.isFile()) {
                                files.add(f);
                            }
                        }
                    } else {
                        files.add(s);
                    }
                }
            }
            if (files.isEmpty()) {
                throw new DataException("data.text = " + text + " matches no file; give a file, a folder, a glob or '"
                        + TextCorpus.KJV + "' (the King James Bible)");
            }
            return files;
        } catch (IOException | IllegalArgumentException e) {
            throw new DataException("cannot list data.text = " + text + ": " + e.getMessage());
        }
    }

    /** The bytes {@code text} names, read on this machine through Hadoop's file systems. */
    static byte[] read(String text, Configuration hadoop) {
        if (text.equals(TextCorpus.KJV)) {
            return TextCorpus.kingJames();
        }
        ByteArrayOutputStream all = new ByteArrayOutputStream();
        for (FileStatus f : files(text, hadoop)) {
            try (InputStream in = f.getPath().getFileSystem(hadoop).open(f.getPath())) {
                in.transferTo(all);
            } catch (IOException e) {
                throw new DataException("cannot read " + f.getPath() + " (" + e.getMessage() + "); check data.text");
            }
        }
        return all.toByteArray();
    }

    /** What {@code text} is, for the driver's console: "3 files, 4,298,239 bytes". */
    static String describe(String text, Configuration hadoop) {
        if (text.equals(TextCorpus.KJV)) {
            TextCorpus.kingJames();  // fails here, on the driver, when bible-kjv is missing
            return "the King James Bible (bible-kjv), read by each executor";
        }
        List<FileStatus> files = files(text, hadoop);
        long bytes = files.stream().mapToLong(FileStatus::getLen).sum();
        return String.format("%d file%s, %,d bytes, read by each executor", files.size(), files.size() == 1 ? "" : "s",
                bytes);
    }
}
