package io.roundhouse.comms;

import com.esotericsoftware.kryo.kryo5.Kryo;
import com.esotericsoftware.kryo.kryo5.KryoException;
import com.esotericsoftware.kryo.kryo5.Serializer;
import com.esotericsoftware.kryo.kryo5.io.Input;
import com.esotericsoftware.kryo.kryo5.io.Output;
import java.util.List;

/**
 * Kryo encoding of control messages: registration required (an unregistered class is an error on
 * both sides), a bounded message size, and array and string lengths checked against the bytes
 * actually present before anything is allocated, so a corrupt length cannot exhaust memory.
 * Every side must register the same classes in the same order. One codec per thread.
 */
public final class ControlCodec {
    private static final int FIRST_ARRAY_ID = 10;   // String and the arrays, with bounded serializers
    private static final int LAST_ARRAY_ID = 15;
    private static final int FIRST_TYPE_ID = 100;   // the message types, in the order given
    private final Kryo kryo = new Kryo();
    private final Output output;
    private final Input input = new Input();
    private final int maxBytes;
    private final int types;

    /**
     * @param maxBytes largest encoded message
     * @param types    the message classes (records or plain classes with a no-arg constructor),
     *                 in an order every side shares
     */
    public ControlCodec(int maxBytes, List<Class<?>> types) {
        this.maxBytes = maxBytes;
        this.output = new Output(256, maxBytes);
        kryo.setRegistrationRequired(true);
        kryo.setReferences(false);
        kryo.register(String.class, new BoundedString(), FIRST_ARRAY_ID);
        kryo.register(byte[].class, new BoundedBytes(), 11);
        kryo.register(int[].class, new BoundedInts(), 12);
        kryo.register(long[].class, new BoundedLongs(), 13);
        kryo.register(float[].class, new BoundedFloats(), 14);
        kryo.register(double[].class, new BoundedDoubles(), LAST_ARRAY_ID);
        int id = FIRST_TYPE_ID;
        for (Class<?> t : types) {
            kryo.register(t, id++);
        }
        this.types = types.size();
    }

    /** Encodes {@code message} (not null); the bytes are valid until the next call. */
    public byte[] encode(Object message, int[] length) {
        if (message == null) {
            throw new IllegalArgumentException("a control message cannot be null");
        }
        output.reset();
        try {
            kryo.writeClassAndObject(output, message);
        } catch (KryoException | IllegalArgumentException e) {
            throw new CommsException("control message " + message.getClass().getName() + " cannot be encoded ("
                    + e.getMessage() + "); is it registered, and under " + maxBytes + " bytes?", e);
        }
        length[0] = output.position();
        return output.getBuffer();
    }

    /** Decodes exactly {@code length} bytes; anything malformed is a {@link CommsException}. */
    public Object decode(byte[] bytes, int offset, int length) {
        if (length > maxBytes) {
            throw new CommsException("control message of " + length + " bytes exceeds the " + maxBytes + "-byte limit");
        }
        input.setBuffer(bytes, offset, length);
        try {
            // The class id comes first (Kryo writes id + 2; 0 is null, 1 a class by name). Only the ids
            // registered here are read on: Kryo's own registrations (String with its unbounded
            // serializer, Integer, ...) and names, read before registration is checked, are refused unread.
            int id = input.readVarInt(true) - 2;
            if (!(id >= FIRST_ARRAY_ID && id <= LAST_ARRAY_ID) && !(id >= FIRST_TYPE_ID && id < FIRST_TYPE_ID + types)) {
                throw new CommsException("malformed control message (" + length + " bytes): class id " + id
                        + " is no message type of this channel");
            }
            input.setPosition(offset);
            Object o = kryo.readClassAndObject(input);
            if (input.position() != offset + length) {
                throw new CommsException("control message has " + (offset + length - input.position())
                        + " trailing bytes");
            }
            return o;
        } catch (KryoException | IllegalArgumentException | IndexOutOfBoundsException | NegativeArraySizeException e) {
            throw new CommsException("malformed control message (" + length + " bytes): " + e.getMessage(), e);
        }
    }

    private static int checkedLength(Input in, int elementBytes) {
        int n = in.readVarInt(true);
        if (n < 0 || (long) n * elementBytes > in.limit() - in.position()) {
            throw new KryoException("length " + n + " exceeds the " + (in.limit() - in.position()) + " bytes left");
        }
        return n;
    }

    private static final class BoundedString extends Serializer<String> {
        @Override
        public void write(Kryo k, Output out, String s) {
            byte[] b = s.getBytes(java.nio.charset.StandardCharsets.UTF_8);
            out.writeVarInt(b.length, true);
            out.writeBytes(b);
        }

        @Override
        public String read(Kryo k, Input in, Class<? extends String> type) {
            int n = checkedLength(in, 1);
            return new String(in.readBytes(n), java.nio.charset.StandardCharsets.UTF_8);
        }
    }

    private static final class BoundedBytes extends Serializer<byte[]> {
        @Override
        public void write(Kryo k, Output out, byte[] a) {
            out.writeVarInt(a.length, true);
            out.writeBytes(a);
        }

        @Override
        public byte[] read(Kryo k, Input in, Class<? extends byte[]> type) {
            return in.readBytes(checkedLength(in, 1));
        }
    }

    private static final class BoundedInts extends Serializer<int[]> {
        @Override
        public void write(Kryo k, Output out, int[] a) {
            out.writeVarInt(a.length, true);
            out.writeInts(a, 0, a.length);
        }

        @Override
        public int[] read(Kryo k, Input in, Class<? extends int[]> type) {
            return in.readInts(checkedLength(in, 4));
        }
    }

    private static final class BoundedLongs extends Serializer<long[]> {
        @Override
        public void write(Kryo k, Output out, long[] a) {
            out.writeVarInt(a.length, true);
            out.writeLongs(a, 0, a.length);
        }

        @Override
        public long[] read(Kryo k, Input in, Class<? extends long[]> type) {
            return in.readLongs(checkedLength(in, 8));
        }
    }

    private static final class BoundedFloats extends Serializer<float[]> {
        @Override
        public void write(Kryo k, Output out, float[] a) {
            out.writeVarInt(a.length, true);
            out.writeFloats(a, 0, a.length);
        }

        @Override
        public float[] read(Kryo k, Input in, Class<? extends float[]> type) {
            return in.readFloats(checkedLength(in, 4));
        }
    }

    private static final class BoundedDoubles extends Serializer<double[]> {
        @Override
        public void write(Kryo k, Output out, double[] a) {
            out.writeVarInt(a.length, true);
            out.writeDoubles(a, 0, a.length);
        }

        @Override
        public double[] read(Kryo k, Input in, Class<? extends double[]> type) {
            return in.readDoubles(checkedLength(in, 8));
        }
    }
}
