package io.roundhouse.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.roundhouse.kernels.cpu.CpuBackend;
import io.roundhouse.kernels.cuda.CudaBackend;
import io.roundhouse.kernels.cuda.LaunchCheckDevice;
import java.util.List;
import java.util.function.BiFunction;
import org.junit.jupiter.api.Test;

/**
 * How a backend is chosen, with a stand-in for the GPU (a CUDA backend over the launch checker):
 * {@code auto} takes CUDA only when it is there and agrees with the CPU, and otherwise the CPU;
 * {@code cuda} refuses to start on a backend that disagrees; a refused CUDA backend is closed.
 */
class BackendsTest {
    private final LaunchCheckDevice dev = new LaunchCheckDevice();
    private int opened;

    /** A machine where CUDA is there ({@code why} null) or not, whose backends are the checker's. */
    private Backends.CudaSource source(String why) {
        return new Backends.CudaSource() {
            @Override
            public String unavailableReason() {
                return why;
            }

            @Override
            public CudaBackend open(int ordinal) {
                opened++;
                if (ordinal != 3) {
                    throw new IllegalStateException("GPU " + ordinal + " failed to start");
                }
                return dev.backend();
            }
        };
    }

    private static final BiFunction<Backend, Backend, List<String>> AGREES = (ref, cand) -> {
        assertInstanceOf(CpuBackend.class, ref, "the reference is the CPU");
        assertInstanceOf(CudaBackend.class, cand);
        return List.of();
    };
    private static final BiFunction<Backend, Backend, List<String>> DISAGREES =
            (ref, cand) -> List.of("fp32 gelu/layernorm: head.w gradient differs");

    @Test
    void autoTakesAGpuThatAgreesWithTheCpu() {
        Backend b = Backends.create("auto", "3", AGREES, source(null));
        assertInstanceOf(CudaBackend.class, b);
        assertFalse(dev.closed);
        assertEquals(1, opened);
    }

    @Test
    void autoFallsBackToTheCpuAndClosesTheGpu() {
        assertInstanceOf(CpuBackend.class, Backends.create("auto", "3", DISAGREES, source(null)));
        assertTrue(dev.closed, "the refused CUDA backend is closed");
        assertInstanceOf(CpuBackend.class, Backends.create("auto", "0", AGREES, source(null)), "a GPU that fails "
                + "to start");
        assertInstanceOf(CpuBackend.class, Backends.create("auto", "3", AGREES, source("no driver")));
        assertInstanceOf(CpuBackend.class, Backends.create("auto", null, (ref, cand) -> {
            throw new IllegalStateException("a kernel failed");
        }, source(null)), "a check that throws");
    }

    @Test
    void cudaRefusesAGpuThatDisagrees() {
        Exception e = assertThrows(IllegalStateException.class,
                () -> Backends.create("cuda", "3", DISAGREES, source(null)));
        assertTrue(e.getMessage().contains("computes other numbers than the CPU reference")
                && e.getMessage().contains("head.w gradient differs"), e.getMessage());
        assertTrue(dev.closed);
        assertInstanceOf(CudaBackend.class, Backends.create("cuda", "3", AGREES, source(null)));
        Exception none = assertThrows(BackendException.class,
                () -> Backends.create("cuda", "3", AGREES, source("no driver")));
        assertTrue(none.getMessage().contains("backend = cuda, but no driver"), none.getMessage());
        Exception address = assertThrows(BackendException.class,
                () -> Backends.create("cuda", "GPU-1f2e", AGREES, source(null)));
        assertTrue(address.getMessage().contains("is not a CUDA device ordinal"), address.getMessage());
        assertInstanceOf(CpuBackend.class, Backends.create("cpu", "3", AGREES, source(null)));
    }
}
