package io.roundhouse.kernels;

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
        switch (choice) {
            case "cpu", "auto" -> {
            }
            case "cuda" -> {
                String why = CudaBackend.unavailableReason();
                if (why != null) {
                    throw new UnsupportedOperationException("backend = cuda, but " + why
                            + ". Use backend = cpu (or auto) on this machine.");
                }
            }
            default -> throw new IllegalArgumentException("unknown backend '" + choice + "': use auto, cpu or cuda");
        }
    }

    /**
     * @param choice {@code auto} (the CPU, see below), {@code cpu}, or {@code cuda}
     * @throws IllegalArgumentException for an unknown choice
     * @throws UnsupportedOperationException for {@code cuda} where it cannot run (the reason says why)
     */
    public static Backend create(String choice) {
        return create(choice, null);
    }

    /**
     * {@code auto} picks the CPU for now, and logs whether CUDA would be available: the CUDA backend
     * has not yet passed its op tests on a GPU (issue #7), so it runs only when asked for.
     *
     * @param gpu the GPU this worker was given (a device ordinal, e.g. from Spark's
     *            {@code TaskContext.resources()}), or null (GPU 0 for {@code cuda}); the CPU backend
     *            leaves it idle and says so
     */
    public static Backend create(String choice, String gpu) {
        checkAvailable(choice);
        String given = gpu == null ? "" : "; GPU " + gpu + " was assigned to this worker and stays idle";
        switch (choice) {
            case "cpu" -> {
                Backend b = new CpuBackend();
                if (gpu == null) {
                    LOG.info("backend: {} (asked for cpu)", b.name());
                } else {
                    LOG.warn("backend: {} (asked for cpu{})", b.name(), given);
                }
                return b;
            }
            case "cuda" -> {
                int ordinal;
                try {
                    ordinal = gpu == null ? 0 : Integer.parseInt(gpu.trim());
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException("GPU address '" + gpu + "' is not a CUDA device ordinal (0, 1, "
                            + "...): make the cluster's GPU discovery script report ordinals");
                }
                Backend b = new CudaBackend(ordinal);
                LOG.info("backend: {} (asked for cuda)", b.name());
                return b;
            }
            case "auto" -> {
                Backend b = new CpuBackend();
                String why = CudaBackend.unavailableReason();
                String cuda = why == null ? "CUDA is available, but its backend has not passed its op tests on a GPU "
                        + "yet (issue #7); set backend=cuda to use it" : "CUDA is not available: " + why;
                if (gpu == null) {
                    LOG.info("backend: {} (auto: {})", b.name(), cuda);
                } else {
                    LOG.warn("backend: {} (auto: {}{})", b.name(), cuda, given);
                }
                return b;
            }
            default -> throw new IllegalStateException("unreachable: " + choice);
        }
    }
}
