package io.roundhouse.worker.data;

import java.io.Serializable;

/** Text to token ids and back. {@link ByteTokenizer} is the default; a learned vocabulary can come later. */
public interface Tokenizer extends Serializable {
    /** The name a checkpoint records ("bytes"). */
    String name();

    /** Token ids are in [0, vocabulary). */
    int vocabulary();

    int[] encode(byte[] text);

    /** The bytes of {@code ids[from, from + n)}. */
    byte[] decode(int[] ids, int from, int n);

    /** The tokenizer a checkpoint names. */
    static Tokenizer named(String name) {
        if (name.equals(ByteTokenizer.NAME)) {
            return new ByteTokenizer();
        }
        throw new DataException("no tokenizer named '" + name + "'; the one built is '" + ByteTokenizer.NAME + "'");
    }
}
