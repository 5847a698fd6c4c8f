package io.roundhouse.kernels.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.roundhouse.kernels.cuda.CudaBackend;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * Where nvcc is installed (the CI machine; no GPU needed): every {@code src/main/cuda/*.cu} was built
 * into the jar's PTX, that PTX assembles for sm_90 (Hopper) with ptxas, and every kernel the CUDA
 * backend launches is in it.
 */
class PtxBuildTest {
    private static final Path SRC = Path.of("src/main/cuda");

    @Test
    void everyKernelIsBuiltAndAssemblesForSm90() throws Exception {
        Path ptxas = tool("ptxas");
        Assumptions.assumeTrue(ptxas != null, "no CUDA toolkit (ptxas) on the PATH: the PTX cannot be checked here");
        List<String> sources = new ArrayList<>();
        try (var files = Files.list(SRC)) {
            files.filter(p -> p.toString().endsWith(".cu")).forEach(p -> sources.add(p.getFileName().toString()
                    .replace(".cu", "")));
        }
        assertTrue(sources.size() >= 5, "kernel sources: " + sources);
        assertEquals(sources.stream().sorted().toList(), CudaDevice.modules().stream().sorted().toList(),
                "every .cu is built into the jar's PTX");
        StringBuilder entries = new StringBuilder();
        for (String m : sources) {
            String ptx;
            try (var in = CudaDevice.class.getResourceAsStream(CudaDevice.PTX_DIR + m + ".ptx")) {
                assertTrue(in != null, m + ".ptx is in the jar");
                ptx = new String(in.readAllBytes(), StandardCharsets.US_ASCII);
            }
            entries.append(ptx);
            Path file = Files.createTempFile(m, ".ptx");
            Path cubin = Files.createTempFile(m, ".cubin");
            Files.writeString(file, ptx);
            Process p = new ProcessBuilder(ptxas.toString(), "-arch=sm_90", "-o", cubin.toString(), file.toString())
                    .redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertEquals(0, p.waitFor(), m + ".ptx does not assemble for sm_90: " + out);
            assertTrue(Files.size(cubin) > 0);
            System.out.printf("%s.ptx: %d bytes of PTX -> %d bytes of sm_90 cubin%n", m, ptx.length(), Files.size(cubin));
            Files.delete(file);
            Files.delete(cubin);
        }
        // Every kernel name the backend launches is an entry of the PTX.
        StringBuilder backend = new StringBuilder();
        try (var javaFiles = Files.list(Path.of("src/main/java/io/roundhouse/kernels/cuda"))) {
            for (Path f : javaFiles.sorted().toList()) {
                backend.append(Files.readString(f));
            }
        }
        Matcher launched = Pattern.compile("\"(rh_[a-z0-9_]+)\"").matcher(backend);
        int count = 0;
        while (launched.find()) {
            count++;
            assertTrue(entries.toString().contains(".entry " + launched.group(1) + "("), launched.group(1)
                    + " is launched but not defined in any .cu");
        }
        assertTrue(count >= 20, "the backend launches " + count + " kernels");
    }

    private static Path tool(String name) throws IOException {
        for (String dir : (System.getenv("PATH") + ":/usr/local/cuda/bin").split(":")) {
            Path p = Path.of(dir, name);
            if (Files.isExecutable(p)) {
                return p;
            }
        }
        return null;
    }
}
