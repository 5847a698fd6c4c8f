package io.roundhouse.kernels.cuda;

import static jcuda.driver.JCudaDriver.cuCtxSetCurrent;
import static jcuda.driver.JCudaDriver.cuCtxSynchronize;
import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuDeviceGetCount;
import static jcuda.driver.JCudaDriver.cuDeviceGetName;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRelease;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRetain;
import static jcuda.driver.JCudaDriver.cuInit;
import static jcuda.driver.JCudaDriver.cuLaunchKernel;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuMemFreeHost;
import static jcuda.driver.JCudaDriver.cuMemHostAlloc;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoD;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoHAsync;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoDAsync;
import static jcuda.driver.JCudaDriver.cuMemsetD32;
import static jcuda.driver.JCudaDriver.cuModuleGetFunction;
import static jcuda.driver.JCudaDriver.cuModuleLoadData;
import static jcuda.driver.JCudaDriver.cuStreamCreate;
import static jcuda.driver.JCudaDriver.cuStreamDestroy;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;

import io.roundhouse.kernels.Check;
import io.roundhouse.kernels.HostBuffer;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import jcuda.CudaException;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import jcuda.driver.CUstream;
import jcuda.driver.CUstream_flags;
import jcuda.driver.JCudaDriver;

/**
 * One GPU through the CUDA driver API (JCuda; needs only {@code libcuda.so.1}): its primary
 * context, our PTX modules (loaded from the jar's {@code io/roundhouse/kernels/cuda/}, JIT-compiled
 * by the driver), kernel launches, and one memory arena for the backend's lifetime (blocks of at
 * least 64 MiB, handed out 256-byte aligned, freed together at close).
 */
class CudaDevice implements AutoCloseable {
    static final String PTX_DIR = "/io/roundhouse/kernels/cuda/";
    private static final long BLOCK = 64L << 20;

    private final int ordinal;
    private final CUdevice device = new CUdevice();
    private final CUcontext context = new CUcontext();
    private final CUstream stream = new CUstream();
    private final String name;
    private final Map<String, CUfunction> functions = new HashMap<>();
    private final List<CUdeviceptr> blocks = new ArrayList<>();
    private final Map<HostBuffer, Pointer> pinned = new java.util.IdentityHashMap<>();
    private boolean syncEveryOp;  // backend.cudaSync: wait for every kernel, so an error names its own
    private CUdeviceptr current;
    private long used;
    private long capacity;
    private long allocated;

    CudaDevice(int ordinal) {
        this.ordinal = ordinal;
        JCudaDriver.setExceptionsEnabled(true);
        cuInit(0);
        int[] count = new int[1];
        cuDeviceGetCount(count);
        if (ordinal < 0 || ordinal >= count[0]) {
            throw new IllegalArgumentException("GPU " + ordinal + " does not exist: this machine has " + count[0]
                    + " CUDA device(s)");
        }
        cuDeviceGet(device, ordinal);
        byte[] n = new byte[256];
        cuDeviceGetName(n, n.length, device);
        this.name = new String(n, StandardCharsets.US_ASCII).trim().replace("\0", "");
        cuDevicePrimaryCtxRetain(context, device);
        cuCtxSetCurrent(context);
        // The backend's kernels run in order on its own stream; it is a blocking stream, so the
        // synchronous copies (on the legacy default stream) wait for the kernels before them.
        cuStreamCreate(stream, CUstream_flags.CU_STREAM_DEFAULT);
        for (String module : modules()) {
            load(module);
        }
    }

    /**
     * A device that is no GPU: nothing is loaded or allocated, and a subclass supplies every call
     * (the launch checker of the tests, which runs the backend's code without a GPU).
     */
    CudaDevice(String name) {
        this.ordinal = -1;
        this.name = name;
    }

    private static String reason;
    private static boolean probed;

    /**
     * Why the CUDA backend cannot run here, or null when it can (driver, a device, the kernels).
     * Probed once per JVM: a native library that failed to load cannot be loaded again.
     */
    static synchronized String unavailableReason() {
        if (!probed) {
            reason = probe();
            probed = true;
        }
        return reason;
    }

    private static String probe() {
        if (modules().isEmpty()) {
            return "its kernels were not built (nvcc was not on the PATH when this jar was built)";
        }
        try {
            JCudaDriver.setExceptionsEnabled(true);
            cuInit(0);
            int[] count = new int[1];
            cuDeviceGetCount(count);
            return count[0] == 0 ? "the CUDA driver loads but finds no GPU" : null;
        } catch (UnsatisfiedLinkError | NoClassDefFoundError e) {
            String m = String.valueOf(e.getMessage());
            return m.contains("libcuda.so.1") ? "the NVIDIA driver's libcuda.so.1 is not on this machine"
                    : "JCuda's driver library could not be loaded (" + m.lines().findFirst().orElse(m) + ")";
        } catch (CudaException e) {
            return "the CUDA driver failed to start: " + e.getMessage();
        }
    }

    /** The PTX modules built into this jar (empty when nvcc was missing at build time). */
    static List<String> modules() {
        try (InputStream in = CudaDevice.class.getResourceAsStream(PTX_DIR + "modules.txt")) {
            if (in == null) {
                return List.of();
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8).lines().map(String::trim)
                    .filter(s -> !s.isEmpty()).toList();
        } catch (IOException e) {
            throw new IllegalStateException("cannot read the CUDA module list: " + e.getMessage(), e);
        }
    }

    private void load(String module) {
        byte[] ptx;
        try (InputStream in = CudaDevice.class.getResourceAsStream(PTX_DIR + module + ".ptx")) {
            if (in == null) {
                throw new IllegalStateException("CUDA module " + module + ".ptx is listed but missing from the jar");
            }
            byte[] text = in.readAllBytes();
            ptx = java.util.Arrays.copyOf(text, text.length + 1);  // the driver wants it NUL-terminated
        } catch (IOException e) {
            throw new IllegalStateException("cannot read CUDA module " + module + ": " + e.getMessage(), e);
        }
        CUmodule m = new CUmodule();
        try {
            cuModuleLoadData(m, ptx);
        } catch (CudaException e) {
            throw new IllegalStateException("GPU " + ordinal + " (" + name + ") cannot load CUDA module " + module
                    + " (PTX for compute_80 from " + module + ".cu): " + e.getMessage(), e);
        }
        String text = new String(ptx, StandardCharsets.US_ASCII);
        for (String line : text.split("\n")) {
            String l = line.trim();
            int at = l.indexOf(".entry ");
            if (at >= 0) {
                String fn = l.substring(at + 7).replace("(", " ").trim().split("\\s+")[0];
                CUfunction f = new CUfunction();
                cuModuleGetFunction(f, m, fn);
                functions.put(fn, f);
            }
        }
    }

    String name() {
        return name;
    }

    int ordinal() {
        return ordinal;
    }

    /** Makes this device's context current on the calling thread. */
    void bind() {
        cuCtxSetCurrent(context);
    }

    /** {@code bytes} of device memory from the arena, 256-byte aligned. */
    CUdeviceptr allocate(long bytes) {
        long need = (bytes + 255) & ~255L;
        if (current == null || used + need > capacity) {
            long size = Math.max(BLOCK, need);
            CUdeviceptr block = new CUdeviceptr();
            try {
                cuMemAlloc(block, size);
            } catch (CudaException e) {
                throw new IllegalStateException("GPU " + ordinal + " (" + name + ") is out of memory: " + allocated
                        + " bytes held, " + size + " more asked: " + e.getMessage(), e);
            }
            blocks.add(block);
            current = block;
            used = 0;
            capacity = size;
        }
        CUdeviceptr p = used == 0 ? current : current.withByteOffset(used);
        used += need;
        allocated += need;
        return p;
    }

    /**
     * Launches kernel {@code fn} (grid x·y, 256 threads or {@code block}) with the arguments given
     * ({@link CudaTensor}s, Integer, Long, Float, or null for a null pointer); a failure names the op.
     */
    void launch(String op, String fn, int gridX, int gridY, int block, Object... args) {
        launchGrid(op, fn, gridX, gridY, 1, block, args);
    }

    /** As {@link #launch}, with a third grid dimension. */
    void launchGrid(String op, String fn, int gridX, int gridY, int gridZ, int block, Object... args) {
        CUfunction f = functions.get(fn);
        if (f == null) {
            throw new IllegalStateException(op + ": kernel " + fn + " is not in the CUDA modules " + modules());
        }
        Pointer[] ps = new Pointer[args.length];
        for (int i = 0; i < args.length; i++) {
            Object a = args[i];
            if (a == null) {
                ps[i] = Pointer.to(new CUdeviceptr());
            } else if (a instanceof CudaTensor t) {
                ps[i] = Pointer.to(t.ptr());
            } else if (a instanceof CUdeviceptr p) {
                ps[i] = Pointer.to(p);
            } else if (a instanceof Integer v) {
                ps[i] = Pointer.to(new int[] {v});
            } else if (a instanceof Long v) {
                ps[i] = Pointer.to(new long[] {v});
            } else if (a instanceof Float v) {
                ps[i] = Pointer.to(new float[] {v});
            } else {
                throw new IllegalArgumentException(op + ": cannot pass " + a.getClass() + " to a kernel");
            }
        }
        try {
            cuLaunchKernel(f, gridX, gridY, gridZ, block, 1, 1, 0, stream, Pointer.to(ps), null);
            if (syncEveryOp) {
                cuStreamSynchronize(stream);
            }
        } catch (CudaException e) {
            throw new IllegalStateException(op + " (kernel " + fn + ", grid " + gridX + "x" + gridY + "x" + gridZ
                    + ") failed on GPU "
                    + ordinal + ": " + e.getMessage() + (syncEveryOp ? "" : " (the error may come from an earlier "
                    + "kernel: set backend.cudaSync = on to check after every kernel)"), e);
        }
    }

    /**
     * Debugging: wait for every kernel as it is launched, so a failing kernel is named by its own
     * launch instead of by a later call (slow; off by default).
     */
    void syncEveryOp(boolean on) {
        this.syncEveryOp = on;
    }

    /** Blocks of 256 threads for a grid-stride loop over n elements. */
    static int blocksFor(long n) {
        return (int) Math.max(1, Math.min((n + 255) / 256, 4096));
    }

    /** Waits for every kernel launched so far. */
    void synchronize() {
        bind();
        cuStreamSynchronize(stream);
    }

    /** Copies {@code bytes} from the host to the device. */
    void copyHtoD(String op, CUdeviceptr dst, Pointer src, long bytes) {
        call(op, () -> cuMemcpyHtoD(dst, src, bytes));
    }

    /** Copies {@code bytes} from the device to the host (after the kernels before it). */
    void copyDtoH(String op, Pointer dst, CUdeviceptr src, long bytes) {
        call(op, () -> cuMemcpyDtoH(dst, src, bytes));
    }

    /** Queues a copy of {@code bytes} to (page-locked) host memory on the backend's stream; see {@link #synchronize}. */
    void copyDtoHAsync(String op, Pointer dst, CUdeviceptr src, long bytes) {
        call(op, () -> cuMemcpyDtoHAsync(dst, src, bytes, stream));
    }

    /** Queues a copy of {@code bytes} from (page-locked) host memory on the backend's stream. */
    void copyHtoDAsync(String op, CUdeviceptr dst, Pointer src, long bytes) {
        call(op, () -> cuMemcpyHtoDAsync(dst, src, bytes, stream));
    }

    /** Copies {@code bytes} within the device. */
    void copyDtoD(String op, CUdeviceptr dst, CUdeviceptr src, long bytes) {
        call(op, () -> cuMemcpyDtoD(dst, src, bytes));
    }

    /** Sets {@code count} 32-bit words to {@code value}. */
    void memset32(String op, CUdeviceptr dst, int value, long count) {
        call(op, () -> cuMemsetD32(dst, value, count));
    }

    /** Runs a driver call, naming the op and tensors when it fails (a copy, a memset). */
    private void call(String op, Runnable r) {
        try {
            r.run();
        } catch (CudaException e) {
            throw new IllegalStateException(op + " failed on GPU " + ordinal + " (" + name + "): " + e.getMessage()
                    + (syncEveryOp ? "" : " (the error may come from an earlier kernel: set "
                    + "backend.cudaSync = on to check after every kernel)"), e);
        }
    }

    /** Page-locked host memory for {@code floats} floats, freed at close. */
    HostBuffer allocateHost(String name, int floats) {
        if (!(floats >= 0)) {
            throw new IllegalArgumentException("host buffer " + name + ": a negative size " + floats);
        }
        bind();
        long bytes = 4L * Math.max(1, floats);
        Pointer p = new Pointer();
        call("allocate pinned host buffer " + name + " (" + bytes + " bytes)", () -> cuMemHostAlloc(p, bytes, 0));
        HostBuffer h = new HostBuffer(name, p.getByteBuffer(0, bytes), floats, true);
        pinned.put(h, p);
        return h;
    }

    /** The address of float {@code off} of one of this device's host buffers. */
    Pointer hostPointer(HostBuffer h, int off) {
        Pointer p = pinned.get(h);
        if (p == null) {
            throw new IllegalArgumentException("host buffer " + h + " was not allocated by this backend (or it is "
                    + "closed)");
        }
        return p.withByteOffset(4L * off);
    }

    long allocatedBytes() {
        return allocated;
    }

    @Override
    public void close() {
        bind();
        cuCtxSynchronize();
        cuStreamDestroy(stream);
        for (CUdeviceptr b : blocks) {
            cuMemFree(b);
        }
        blocks.clear();
        for (Pointer p : pinned.values()) {
            cuMemFreeHost(p);
        }
        pinned.clear();
        cuDevicePrimaryCtxRelease(device);
    }
}
