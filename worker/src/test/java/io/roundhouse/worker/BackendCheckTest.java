package io.roundhouse.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.cpu.CpuBackend;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.worker.model.BackendCheck;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.List;
import java.util.function.BiConsumer;
import org.junit.jupiter.api.Test;

/**
 * The start-up check that guards {@code backend = auto}: silent on a backend that computes what
 * the CPU computes, and naming what differs on one that does not (a CPU backend with one op
 * perturbed stands in for a faulty GPU kernel).
 */
class BackendCheckTest {

    @Test
    void theCpuAgreesWithItself() {
        try (CpuBackend a = new CpuBackend(); CpuBackend b = new CpuBackend()) {
            assertEquals(List.of(), BackendCheck.differences(a, b));
        }
    }

    @Test
    void aWrongExpertKernelIsNamed() {
        // The expert FFN's output 1% too large: fp32's tolerance catches it, bf16's is wider.
        List<String> bad = check("expertFfnForward", (be, args) -> be.scale((Tensor) args[0], 1.01f));
        assertTrue(bad.stream().anyMatch(s -> s.startsWith("fp32 gelu/layernorm: ") && s.contains("experts.w2 gradient")),
                String.join("\n", bad));
        // 10% too large, as a kernel that drops a term would give: both runs name it.
        bad = check("expertFfnForward", (be, args) -> be.scale((Tensor) args[0], 1.1f));
        assertTrue(bad.stream().anyMatch(s -> s.startsWith("fp32 gelu/layernorm: ") && s.contains("experts.w2 gradient")),
                String.join("\n", bad));
        assertTrue(bad.stream().anyMatch(s -> s.startsWith("bf16 swiglu/rmsnorm: ") && s.contains("experts.w2 gradient")),
                String.join("\n", bad));
    }

    @Test
    void aWrongOptimizerOrNaNIsNamed() {
        List<String> bad = check("adamWStep", (be, args) -> be.fill((Tensor) args[3], Float.NaN));
        assertEquals(1, bad.size(), String.join("\n", bad));
        assertTrue(bad.get(0).startsWith("AdamW v differs: element 0 is NaN"), bad.get(0));
    }

    @Test
    void aWrongRouterGradientIsNamed() {
        // gateBackward's dLogits with the wrong sign: only the routers' (and what lies below) gradients change.
        List<String> bad = check("gateBackward", (be, args) -> be.scale((Tensor) args[0], -1f));
        assertTrue(bad.stream().anyMatch(s -> s.contains("moe.router.w gradient")), String.join("\n", bad));
    }

    @Test
    void aWrongSelfTuningKernelIsNamedByTheStnRunAlone() {
        // sumRowProducts (the STN responses' gradients) doubling what it accumulates.
        List<String> bad = check("sumRowProducts", (be, args) -> be.scale((Tensor) args[0], 2f));
        assertTrue(bad.stream().anyMatch(s -> s.startsWith("fp32 gelu/layernorm STN: ")), String.join("\n", bad));
        assertTrue(bad.stream().allMatch(s -> s.startsWith("fp32 gelu/layernorm STN: ")), String.join("\n", bad));
    }

    /** The differences the check finds in a CPU backend whose {@code method} is followed by {@code after}. */
    private static List<String> check(String method, BiConsumer<Backend, Object[]> after) {
        try (CpuBackend reference = new CpuBackend(); CpuBackend inner = new CpuBackend()) {
            Backend perturbed = (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(),
                    new Class<?>[] {Backend.class}, (proxy, m, args) -> {
                        Object result;
                        try {
                            result = m.invoke(inner, args);
                        } catch (InvocationTargetException e) {
                            throw e.getCause();
                        }
                        if (m.getName().equals(method)) {
                            after.accept(inner, args);
                        }
                        return result;
                    });
            List<String> bad = BackendCheck.differences(reference, perturbed);
            bad.forEach(System.out::println);
            return bad;
        }
    }
}
