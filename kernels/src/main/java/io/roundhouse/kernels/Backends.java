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
            case "cuda" -> throw new UnsupportedOperationException(
                    "backend = cuda: the CUDA backend is not built yet (issue #7). Use backend = cpu or auto.");
            default -> throw new IllegalArgumentException("unknown backend '" + choice + "': use auto, cpu or cuda");
        }
    }

    /**
     * @param choice {@code auto} (CUDA when available, else CPU), {@code cpu}, or {@code cuda}
     * @throws IllegalArgumentException for an unknown choice
     * @throws UnsupportedOperationException for {@code cuda}, which is not built yet
     */
    public static Backend create(String choice) {
        return create(choice, null);
    }

    /**
     * @param gpu the GPU this worker was given (a device address, e.g. from Spark's
     *            {@code TaskContext.resources()}), or null; the CUDA backend will bind to it, the
     *            CPU backend leaves it idle and says so
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
            case "auto" -> {
                Backend b = new CpuBackend();
                if (gpu == null) {
                    LOG.info("backend: {} (auto: the CUDA backend is not built yet, see issue #7)", b.name());
                } else {
                    LOG.warn("backend: {} (auto: the CUDA backend is not built yet, see issue #7{})", b.name(), given);
                }
                return b;
            }
            default -> throw new IllegalStateException("unreachable: " + choice);
        }
    }
}
