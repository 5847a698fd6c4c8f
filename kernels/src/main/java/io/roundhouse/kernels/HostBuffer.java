package io.roundhouse.kernels;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;

/**
 * Host memory that tensors are staged through on their way to and from the network: floats in a
 * direct byte buffer in native order, which the comms read and write in place (no Java array in
 * between). The CUDA backend's are page-locked ({@code cuMemHostAlloc}), so its device copies run
 * at the full DMA rate instead of through the driver's own staging buffer; the CPU backend's are
 * plain direct memory. From {@link Backend#allocateHost}; the backend frees them when it closes, after
 * which they must not be touched.
 */
public final class HostBuffer {
    private final String name;
    private final ByteBuffer bytes;
    private final FloatBuffer floats;
    private final boolean pinned;

    /** @param bytes direct memory of at least {@code 4·floats} bytes (at least 4: no allocator takes 0) */
    public HostBuffer(String name, ByteBuffer bytes, int floats, boolean pinned) {
        if (!bytes.isDirect()) {
            throw new IllegalArgumentException("host buffer " + name + " must be direct memory");
        }
        this.name = name;
        this.bytes = bytes.order(ByteOrder.nativeOrder());
        this.floats = this.bytes.asFloatBuffer().slice(0, floats);
        this.pinned = pinned;
    }

    /** A direct buffer of plain (pageable) memory: the CPU backend's. */
    public static HostBuffer direct(String name, int floats) {
        if (!(floats >= 0)) {
            throw new IllegalArgumentException("host buffer " + name + ": a negative size " + floats);
        }
        return new HostBuffer(name, ByteBuffer.allocateDirect(4 * Math.max(1, floats)), floats, false);
    }

    public String name() {
        return name;
    }

    /**
     * The memory: {@link #capacity()} floats in native byte order (for a capacity of 0, one unused
     * float). Use absolute gets and puts only.
     */
    public ByteBuffer bytes() {
        return bytes;
    }

    /** How many floats it holds. */
    public int capacity() {
        return floats.capacity();
    }

    /** Whether the memory is page-locked (a GPU backend's). */
    public boolean pinned() {
        return pinned;
    }

    public float get(int i) {
        return floats.get(i);
    }

    public void put(int i, float v) {
        floats.put(i, v);
    }

    /** {@code dst[dstOff, dstOff+n) = this[from, from+n)}. */
    public void get(int from, float[] dst, int dstOff, int n) {
        floats.get(from, dst, dstOff, n);
    }

    /** {@code this[at, at+n) = src[srcOff, srcOff+n)}. */
    public void put(int at, float[] src, int srcOff, int n) {
        floats.put(at, src, srcOff, n);
    }

    /** Copies {@code n} floats from {@code src[from…]} to {@code this[at…]} ({@code src} may be this buffer). */
    public void put(int at, HostBuffer src, int from, int n) {
        floats.put(at, src.floats, from, n);
    }

    /** Refuses a tensor that does not fit from {@code off}: the copies are raw. */
    public void checkFits(String op, Tensor t, int off) {
        if (!(t.dtype() == DType.FLOAT32)) {
            throw new IllegalArgumentException(op + ": " + t + " is not FLOAT32 (host buffers hold floats)");
        }
        if (!(off >= 0 && (long) off + t.size() <= capacity())) {
            throw new IllegalArgumentException(op + ": " + t + " needs " + t.size() + " floats, host buffer "
                    + name + " has " + (capacity() - (long) off) + " from offset " + off);
        }
    }

    @Override
    public String toString() {
        return name + "[" + capacity() + (pinned ? ", pinned]" : "]");
    }
}
