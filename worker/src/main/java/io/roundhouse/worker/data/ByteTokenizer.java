package io.roundhouse.worker.data;

/** One token per byte (256 symbols): lossless on any input, no vocabulary to learn or ship. */
public final class ByteTokenizer implements Tokenizer {
    public static final String NAME = "bytes";

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public int vocabulary() {
        return 256;
    }

    @Override
    public int[] encode(byte[] text) {
        int[] ids = new int[text.length];
        for (int i = 0; i < text.length; i++) {
            ids[i] = text[i] & 0xFF;
        }
        return ids;
    }

    @Override
    public byte[] decode(int[] ids, int from, int n) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) {
            int id = ids[from + i];
            if (id < 0 || id > 255) {
                throw new IllegalArgumentException("token " + id + " is not a byte");
            }
            b[i] = (byte) id;
        }
        return b;
    }
}
