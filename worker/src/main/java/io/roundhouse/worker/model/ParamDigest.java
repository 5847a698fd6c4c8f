package io.roundhouse.worker.model;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * SHA-256 over named float tensors (name bytes, then the floats' big-endian bits), fed in
 * parameter creation order. One worker and W workers that assemble the same global tensors get
 * the same digest.
 */
public final class ParamDigest {
    private final MessageDigest md;

    public ParamDigest() {
        try {
            md = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JVM", e);
        }
    }

    public void add(String name, float[] values) {
        ByteBuffer buf = ByteBuffer.allocate(4 * values.length);
        buf.asFloatBuffer().put(values);
        md.update(name.getBytes(StandardCharsets.UTF_8));
        md.update(buf.array());
    }

    public String hex() {
        return HexFormat.of().formatHex(md.digest());
    }
}
