package io.roundhouse.worker.data;

import io.roundhouse.kernels.Backend;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A token stream packed into sequences of {@code seqLen}: sequence i reads tokens
 * {@code [start_i, start_i + seqLen]} and predicts each next one, so consecutive starts
 * {@code seqLen} apart make every token of a range a target exactly once per epoch (the
 * remainder shorter than a sequence is left out). The token array is shared by subsets.
 */
public final class TokenSequences implements Examples {
    private final String name;
    private final int[] tokens;
    private final int vocabulary;
    private final int seqLen;
    private final int[] starts;

    private TokenSequences(String name, int[] tokens, int vocabulary, int seqLen, int[] starts) {
        this.name = name;
        this.tokens = tokens;
        this.vocabulary = vocabulary;
        this.seqLen = seqLen;
        this.starts = starts;
    }

    /**
     * The sequences packed from {@code tokens[from, to)}: {@code (to − from − 1) / seqLen} of them.
     *
     * @throws DataException when the range holds no whole sequence
     */
    public static TokenSequences pack(String name, int[] tokens, int vocabulary, int from, int to, int seqLen) {
        int count = Math.max(0, (to - from - 1) / seqLen);
        int[] starts = new int[count];
        for (int i = 0; i < count; i++) {
            starts[i] = from + i * seqLen;
        }
        return new TokenSequences(name, tokens, vocabulary, seqLen, starts);
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public int size() {
        return starts.length;
    }

    public int seqLen() {
        return seqLen;
    }

    public int vocabulary() {
        return vocabulary;
    }

    /** Where sequence i starts in the token stream. */
    public int start(int i) {
        return starts[i];
    }

    /** Sequence i's inputs and next tokens into {@code inputs/targets[off, off + seqLen)}. */
    public void sequence(int i, int[] inputs, int[] targets, int off) {
        int s = starts[i];
        System.arraycopy(tokens, s, inputs, off, seqLen);
        System.arraycopy(tokens, s + 1, targets, off, seqLen);
    }

    @Override
    public TokenSequences subset(String subsetName, int[] indices, int from, int n) {
        int[] s = new int[n];
        for (int i = 0; i < n; i++) {
            s[i] = starts[indices[from + i]];
        }
        return new TokenSequences(subsetName, tokens, vocabulary, seqLen, s);
    }

    @Override
    public Map<String, String> shape() {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("vocabulary", String.valueOf(vocabulary));
        m.put("seqLen", String.valueOf(seqLen));
        return m;
    }

    @Override
    public SequenceBatcher batches(Backend be, int maxN, long seed) {
        return new SequenceBatcher(be, this, maxN, seed);
    }
}
