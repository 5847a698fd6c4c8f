package io.roundhouse.worker.data;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.PathMatcher;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * A language model's text: read from a file, a folder (its files in name order) or a glob, or the
 * built-in King James Bible, then tokenized and split into training and validation sequences.
 */
public final class TextCorpus {
    /** {@code data.text} naming the built-in corpus. */
    public static final String KJV = "kjv";
    /** The King James Bible as Debian's bible-kjv prints it whole (chapter headings and verse numbers included). */
    static final String[] KJV_COMMAND = {"bible", "Genesis 1:1-Revelation 22:21"};
    /** Its length in bytes (bible-kjv 4.x). */
    public static final long KJV_BYTES = 4_298_239L;

    private TextCorpus() {
    }

    /**
     * The bytes {@code text} names on this machine: {@link #KJV}, a file, a folder or a glob
     * ({@code *}, {@code ?}, {@code [..]}, {@code {a,b}} in the last path element).
     */
    public static byte[] readLocal(String text) {
        if (text.equals(KJV)) {
            return kingJames();
        }
        List<Path> files = localFiles(text);
        ByteArrayOutputStream all = new ByteArrayOutputStream();
        for (Path f : files) {
            try {
                all.write(Files.readAllBytes(f));
            } catch (IOException | OutOfMemoryError e) {
                throw new DataException("cannot read " + f + " (" + e.getMessage() + "); check data.text");
            }
        }
        return all.toByteArray();
    }

    /** The regular files {@code text} names, sorted by path. */
    static List<Path> localFiles(String text) {
        Path p = Path.of(text);
        List<Path> files = new ArrayList<>();
        if (Files.isRegularFile(p)) {
            files.add(p);
        } else if (Files.isDirectory(p)) {
            try (Stream<Path> s = Files.list(p)) {
                s.filter(Files::isRegularFile).sorted().forEach(files::add);
            } catch (IOException e) {
                throw new DataException("cannot list the folder " + p + " (" + e.getMessage() + "); check data.text");
            }
        } else if (p.getFileName() != null && p.getFileName().toString().matches(".*[*?\\[{].*")) {
            Path dir = p.toAbsolutePath().getParent();
            PathMatcher m = FileSystems.getDefault().getPathMatcher("glob:" + p.getFileName());
            if (dir != null && Files.isDirectory(dir)) {
                try (Stream<Path> s = Files.list(dir)) {
                    s.filter(f -> Files.isRegularFile(f) && m.matches(f.getFileName())).sorted().forEach(files::add);
                } catch (IOException e) {
                    throw new DataException("cannot list " + dir + " (" + e.getMessage() + "); check data.text");
                }
            }
        } else {
            throw new DataException("data.text = " + text + ": no such file or folder; give a file, a folder, a glob "
                    + "or '" + KJV + "' (the King James Bible)");
        }
        if (files.isEmpty()) {
            throw new DataException("data.text = " + text + " matches no file; give a file, a folder, a glob or '"
                    + KJV + "' (the King James Bible)");
        }
        return files;
    }

    /** The King James Bible, as {@code bible "Genesis 1:1-Revelation 22:21"} prints it. */
    public static byte[] kingJames() {
        Process p;
        try {
            p = new ProcessBuilder(KJV_COMMAND).redirectError(ProcessBuilder.Redirect.DISCARD).start();
        } catch (IOException e) {
            throw new DataException("data.text = kjv needs the 'bible' command of Debian's bible-kjv; install it "
                    + "(sudo apt-get install bible-kjv) or give data.text a file, folder or glob");
        }
        try (InputStream in = p.getInputStream()) {
            byte[] text = in.readAllBytes();
            if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0 || text.length == 0) {
                throw new DataException("'bible \"" + KJV_COMMAND[1] + "\"' failed (exit " + (p.isAlive() ? "none"
                        : p.exitValue()) + "); reinstall bible-kjv or give data.text a file, folder or glob");
            }
            return text;
        } catch (IOException e) {
            throw new DataException("cannot read the output of 'bible': " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new DataException("interrupted while reading the King James Bible");
        } finally {
            p.destroy();
        }
    }

    /**
     * Tokenizes {@code text} and packs it: training sequences from its first
     * {@code 1 − validationFraction} of tokens, validation sequences from the rest (never seen in
     * training). The run reports the validation split at its end.
     *
     * @param source what {@code text} came from, for messages
     */
    public static DataSplits splits(byte[] text, Tokenizer tokenizer, int seqLen, double validationFraction,
                                    String source) {
        return splits(text, tokenizer, seqLen, validationFraction, 0, source);
    }

    /**
     * As {@link #splits(byte[], Tokenizer, int, double, String)}, with a tuning split of
     * {@code tuningFraction} of the tokens just before the validation split, taken from training
     * (a Self-Tuning Network's hyper steps read it, so the validation split stays one no decision
     * was made on): the splits are then (train, tuning, validation).
     */
    public static DataSplits splits(byte[] text, Tokenizer tokenizer, int seqLen, double validationFraction,
                                    double tuningFraction, String source) {
        if (text.length == 0) {
            throw new DataException("the corpus " + source + " is empty; give data.text a file with text in it");
        }
        int[] tokens = tokenizer.encode(text);
        int n = tokens.length;
        int validation = (int) (n * validationFraction);
        int tuning = (int) (n * tuningFraction);
        int validStart = n - validation;
        int trainEnd = validStart - tuning;
        TokenSequences train = TokenSequences.pack("train", tokens, tokenizer.vocabulary(), 0, trainEnd, seqLen);
        TokenSequences valid = TokenSequences.pack("validation", tokens, tokenizer.vocabulary(), validStart, n, seqLen);
        TokenSequences tune = tuning == 0 ? null
                : TokenSequences.pack("tuning", tokens, tokenizer.vocabulary(), trainEnd, validStart, seqLen);
        if (train.size() == 0 || valid.size() == 0 || (tune != null && tune.size() == 0)) {
            throw new DataException("data.seqLen = " + seqLen + " is longer than the corpus " + source + " allows ("
                    + n + " tokens: " + trainEnd + " for training, " + (tune != null ? tuning + " for tuning, " : "")
                    + validation + " for validation, each needing seqLen + 1); lower data.seqLen or give more text");
        }
        return tune == null ? new DataSplits(train, valid, valid) : new DataSplits(train, tune, valid);
    }
}
