package io.roundhouse.kernels;

import io.roundhouse.kernels.cpu.CpuBackend;
import io.roundhouse.kernels.cuda.CudaBackend;
import java.util.List;
import java.util.function.BiFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Creates the backend a job asked for: {@code auto}, {@code cpu} or {@code cuda}. */
public final class Backends {
    private static final Logger LOG = LoggerFactory.getLogger(Backends.class);

    private Backends() {
    }

    /**
     * Fails, saying what to use instead, when {@code choice} cannot be created on this machine.
     * Creates nothing.
     */
    public static void checkAvailable(String choice) {
        checkAvailable(choice, GPU);
    }

    /** Where CUDA backends come from: this machine's GPUs, or a test's stand-in. */
    interface CudaSource {
        /** Why no CUDA backend can be opened here, or null. */
        String unavailableReason();

        CudaBackend open(int ordinal);
    }

    static final CudaSource GPU = new CudaSource() {
        @Override
        public String unavailableReason() {
            return CudaBackend.unavailableReason();
        }

        @Override
        public CudaBackend open(int ordinal) {
            return new CudaBackend(ordinal);
        }
    };

    private static void checkAvailable(String choice, CudaSource cuda) {
        switch (choice) {
            case "cpu", "auto" -> {
            }
            case "cuda" -> {
                String why = cuda.unavailableReason();
                if (why != null) {
                    throw new BackendException("backend = cuda, but " + why
                            + ". Use backend = cpu (or auto) on this machine.");
                }
            }
            default -> throw new IllegalArgumentException("unknown backend '" + choice + "': use auto, cpu or cuda");
        }
    }

    /**
     * @param choice {@code auto}, {@code cpu}, or {@code cuda}
     * @throws IllegalArgumentException for an unknown choice
     * @throws BackendException for {@code cuda} where it cannot run (the reason says why)
     */
    public static Backend create(String choice) {
        return create(choice, null, null);
    }

    /**
     * {@code auto} picks CUDA when the driver, a GPU and the kernels are there and the backend passes
     * {@code check} against the CPU; otherwise the CPU, saying why. {@code cuda} runs the same check
     * and refuses to start when it fails. The choice and its reason are logged.
     *
     * @param gpu   the GPU this worker was given (a device ordinal, e.g. from Spark's
     *              {@code TaskContext.resources()}), or null (GPU 0); the CPU backend leaves it idle
     *              and says so
     * @param check (reference, candidate) → what the candidate computes differently from the CPU
     *              reference (empty when it agrees); null runs none
     */
    public static Backend create(String choice, String gpu, BiFunction<Backend, Backend, List<String>> check) {
        return create(choice, gpu, check, GPU);
    }

    /** {@link #create(String, String, BiFunction)} with CUDA backends from {@code cuda}. */
    static Backend create(String choice, String gpu, BiFunction<Backend, Backend, List<String>> check,
                          CudaSource cuda) {
        checkAvailable(choice, cuda);
        String given = gpu == null ? "" : "; GPU " + gpu + " was assigned to this worker and stays idle";
        switch (choice) {
            case "cpu" -> {
                return cpu("asked for cpu" + given, gpu != null);
            }
            case "cuda" -> {
                CudaBackend b = cuda.open(ordinal(gpu));
                List<String> bad;
                try {
                    bad = verify(b, check);
                } catch (RuntimeException e) {
                    b.close();
                    throw e;
                }
                if (!bad.isEmpty()) {
                    b.close();
                    throw new IllegalStateException("backend = cuda: " + b.name() + " computes other numbers than the "
                            + "CPU reference in its start-up check, so the job does not train on it (a bug: please "
                            + "report it with these lines; use backend = cpu meanwhile):\n  "
                            + String.join("\n  ", bad));
                }
                LOG.info("backend: {} (asked for cuda{})", b.name(),
                        check == null ? "" : "; agrees with the CPU on its start-up check");
                return b;
            }
            case "auto" -> {
                String why = cuda.unavailableReason();
                if (why != null) {
                    return cpu("auto: CUDA is not available: " + why + given, gpu != null);
                }
                CudaBackend b = null;
                try {
                    b = cuda.open(ordinal(gpu));
                    List<String> bad = verify(b, check);
                    if (bad.isEmpty()) {
                        LOG.info("backend: {} (auto: CUDA is available{})", b.name(), check == null ? ""
                                : " and agrees with the CPU on its start-up check");
                        return b;
                    }
                    String name = b.name();
                    b.close();
                    return cpu("auto: " + name + " computes other numbers than the CPU in its start-up check, so "
                            + "it is not used (a bug: please report it with these lines):\n  "
                            + String.join("\n  ", bad), true);
                } catch (RuntimeException e) {
                    if (b != null) {
                        b.close();
                    }
                    return cpu("auto: CUDA is available but its backend failed to start: " + e.getMessage(), true);
                }
            }
            default -> throw new IllegalStateException("unreachable: " + choice);
        }
    }

    private static Backend cpu(String why, boolean warn) {
        Backend b = new CpuBackend();
        if (warn) {
            LOG.warn("backend: {} ({})", b.name(), why);
        } else {
            LOG.info("backend: {} ({})", b.name(), why);
        }
        return b;
    }

    /** The CUDA ordinal of a worker's GPU address (GPU 0 when none was given). */
    private static int ordinal(String gpu) {
        try {
            return gpu == null ? 0 : Integer.parseInt(gpu.trim());
        } catch (NumberFormatException e) {
            throw new BackendException("GPU address '" + gpu + "' is not a CUDA device ordinal (0, 1, "
                    + "...): make the cluster's GPU discovery script report ordinals");
        }
    }

    /** What {@code check} finds wrong with {@code b} against a fresh CPU backend (nothing when null). */
    private static List<String> verify(Backend b, BiFunction<Backend, Backend, List<String>> check) {
        if (check == null) {
            return List.of();
        }
        long start = System.nanoTime();
        List<String> bad;
        try (CpuBackend reference = new CpuBackend()) {
            bad = check.apply(reference, b);
        }
        LOG.info("backend check of {} against the CPU: {} in {} ms", b.name(), bad.isEmpty() ? "agrees"
                : bad.size() + " difference(s)", (System.nanoTime() - start) / 1_000_000);
        return bad;
    }
}
