package io.roundhouse.kernels.cuda;

import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.HostBuffer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;

/**
 * A CUDA device that is no GPU: it runs nothing, and checks every launch the CUDA backend makes
 * against the kernel's C signature in {@code src/main/cuda/*.cu}: that the kernel exists, the
 * argument count, each argument's Java type against its C type (int: Integer, float: Float,
 * long long: Long, pointers: a tensor or null, a {@code float*} a FLOAT32 tensor and an {@code int*}
 * an INT32 one), that each tensor lies inside its allocation, and the grid and block limits. JCuda
 * passes whatever it is given, so these mistakes would otherwise show on a GPU only as wrong
 * numbers or an illegal address. Copies move nothing: what the backend reads back is zeros.
 */
public final class LaunchCheckDevice extends CudaDevice {
    private static final Pattern KERNEL = Pattern.compile(
            "extern \"C\" __global__ void (?:__launch_bounds__\\((\\d+)(?:, \\d+)?\\) )?(rh_\\w+)\\(([^)]*)\\)");

    /** C parameter types by kernel, from the sources. */
    final Map<String, List<String>> signatures = new TreeMap<>();
    /** Kernels declared with {@code __launch_bounds__}: the most threads a block may have. */
    final Map<String, Integer> maxThreads = new TreeMap<>();
    /** Launches by kernel. */
    final Map<String, Integer> launched = new TreeMap<>();
    public final List<String> problems = new ArrayList<>();
    /** Whether the backend closed this device. */
    public boolean closed;
    private final Map<CUdeviceptr, Long> allocations = new IdentityHashMap<>();
    private final Map<HostBuffer, Pointer> host = new IdentityHashMap<>();

    /** With the kernel sources of this module ({@code src/main/cuda}). */
    /** A CUDA backend on this checker (for tests outside this package). */
    public CudaBackend backend() {
        return new CudaBackend(this);
    }

    public LaunchCheckDevice() {
        this(Path.of("src/main/cuda"));
    }

    /** @param sources the folder of the kernels' {@code .cu} files */
    public LaunchCheckDevice(Path sources) {
        super("launch checker (no GPU)");
        try (Stream<Path> files = Files.list(sources)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".cu")).sorted().toList()) {
                String text = Files.readString(f).replaceAll("\\s+", " ");
                Matcher m = KERNEL.matcher(text);
                while (m.find()) {
                    List<String> types = new ArrayList<>();
                    for (String param : m.group(3).split(",")) {
                        String p = param.trim();
                        types.add(p.substring(0, p.lastIndexOf(' ')).replace("const ", "").replace(" *", "*").trim());
                    }
                    signatures.put(m.group(2), types);
                    if (m.group(1) != null) {
                        maxThreads.put(m.group(2), Integer.parseInt(m.group(1)));
                    }
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Kernels defined in the sources that no launch reached. */
    TreeSet<String> neverLaunched() {
        TreeSet<String> out = new TreeSet<>(signatures.keySet());
        out.removeAll(launched.keySet());
        return out;
    }

    @Override
    void bind() {
    }

    @Override
    CUdeviceptr allocate(long bytes) {
        CUdeviceptr p = new CUdeviceptr();
        allocations.put(p, bytes);
        return p;
    }

    /** Device memory the backend has asked for so far (nothing is freed before close). */
    @Override
    public long allocatedBytes() {
        return allocations.values().stream().mapToLong(Long::longValue).sum();
    }

    @Override
    void launchGrid(String op, String fn, int gridX, int gridY, int gridZ, int block, Object... args) {
        launched.merge(fn, 1, Integer::sum);
        String where = op + " → " + fn;
        List<String> types = signatures.get(fn);
        if (types == null) {
            problems.add(where + ": no such kernel in src/main/cuda");
            return;
        }
        if (gridX < 1 || gridY < 1 || gridZ < 1 || gridY > 65_535 || gridZ > 65_535 || block < 1 || block > 1024) {
            problems.add(where + ": grid " + gridX + "x" + gridY + "x" + gridZ + " of " + block + " threads is outside "
                    + "CUDA's limits");
        }
        Integer bound = maxThreads.get(fn);
        if (bound != null && block > bound) {
            problems.add(where + ": " + block + " threads per block, but the kernel is built for at most " + bound);
        }
        if (args.length != types.size()) {
            problems.add(where + ": " + args.length + " arguments for " + types.size() + " parameters " + types);
            return;
        }
        for (int i = 0; i < args.length; i++) {
            String why = mismatch(types.get(i), args[i]);
            if (why != null) {
                problems.add(where + ": argument " + i + " (" + types.get(i) + "): " + why);
            }
        }
    }

    /** Why {@code arg} cannot be passed as C type {@code type}, or null when it can. */
    private String mismatch(String type, Object arg) {
        if (type.endsWith("*")) {
            if (arg == null) {
                return null;
            }
            if (!(arg instanceof CudaTensor t)) {
                return "a " + arg.getClass().getSimpleName() + " where a pointer goes";
            }
            DType want = switch (type) {
                case "float*" -> DType.FLOAT32;
                case "int*" -> DType.INT32;
                default -> null;  // double*: a FLOAT32 tensor holds the doubles
            };
            if (want != null && t.dtype() != want) {
                return t + " is " + t.dtype() + ", the kernel reads " + type;
            }
            Long size = allocations.get(t.base());
            if (size == null) {
                return t + " is not in this device's memory";
            }
            if (t.byteOffset() < 0 || t.byteOffset() + 4L * t.size() > size) {
                return t + " runs past its allocation (" + t.byteOffset() + " + " + 4L * t.size() + " > " + size + ")";
            }
            return null;
        }
        Class<?> want = switch (type) {
            case "int" -> Integer.class;
            case "float" -> Float.class;
            case "long long", "unsigned long long" -> Long.class;
            default -> null;
        };
        if (want == null) {
            return "the checker does not know C type " + type;
        }
        return want.isInstance(arg) ? null : (arg == null ? "null" : "a " + arg.getClass().getSimpleName())
                + " where " + want.getSimpleName() + " goes";
    }

    @Override
    void synchronize() {
    }

    @Override
    void copyHtoD(String op, CUdeviceptr dst, Pointer src, long bytes) {
    }

    @Override
    void copyDtoH(String op, Pointer dst, CUdeviceptr src, long bytes) {
    }

    @Override
    void copyDtoHAsync(String op, Pointer dst, CUdeviceptr src, long bytes) {
    }

    @Override
    void copyHtoDAsync(String op, CUdeviceptr dst, Pointer src, long bytes) {
    }

    @Override
    void copyDtoD(String op, CUdeviceptr dst, CUdeviceptr src, long bytes) {
    }

    @Override
    void memset32(String op, CUdeviceptr dst, int value, long count) {
    }

    @Override
    HostBuffer allocateHost(String name, int floats) {
        HostBuffer h = HostBuffer.direct(name, floats);
        host.put(h, Pointer.to(h.bytes()));
        return h;
    }

    @Override
    Pointer hostPointer(HostBuffer h, int off) {
        Pointer p = host.get(h);
        if (p == null) {
            throw new IllegalArgumentException("host buffer " + h + " was not allocated by this backend (or it is "
                    + "closed)");
        }
        return p.withByteOffset(4L * off);
    }

    @Override
    public void close() {
        closed = true;
    }
}
