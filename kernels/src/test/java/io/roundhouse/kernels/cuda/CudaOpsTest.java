package io.roundhouse.kernels.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.roundhouse.kernels.Activation;
import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.GateMode;
import io.roundhouse.kernels.HostBuffer;
import io.roundhouse.kernels.HostBufferTest;
import io.roundhouse.kernels.Philox;
import io.roundhouse.kernels.Precision;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.kernels.cpu.CpuBackend;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Every CUDA op against the CPU backend on the same inputs and shape tables (1 row, odd sizes,
 * empty expert groups), outputs poisoned with NaN first so an element a kernel forgets fails.
 * fp32 results agree to a relative 1e-4 of the largest reference value (sums in another order);
 * dropout masks and jitter noise come from the same Philox numbers, so the kept elements agree
 * exactly. Skipped, with the reason, where no GPU is present.
 */
@Tag("gpu")
class CudaOpsTest {
    private static CudaBackend gpu;
    private static CpuBackend cpu;
    private static String unavailable;
    private final Random rnd = new Random(17);

    @BeforeAll
    static void open() {
        unavailable = CudaBackend.unavailableReason();
        if (unavailable == null) {
            gpu = new CudaBackend(Integer.getInteger("roundhouse.cuda.device", 0));
            cpu = new CpuBackend();
            System.out.println("CUDA op tests on " + gpu.name());
        } else {
            System.out.println("CUDA op tests skipped: " + unavailable);
        }
    }

    @BeforeEach
    void needsAGpu() {
        Assumptions.assumeTrue(gpu != null, "no CUDA here: " + unavailable);
    }

    @AfterAll
    static void close() {
        if (gpu != null) {
            gpu.close();
        }
    }

    @Test
    void pinnedHostBuffers() {
        assertTrue(HostBufferTest.roundTrip(gpu).pinned(), "the GPU's host buffers are page-locked");
        HostBuffer foreign = cpu.allocateHost("cpu's", 4);
        Exception e = assertThrows(IllegalArgumentException.class,
                () -> gpu.read(gpu.allocate("t", DType.FLOAT32, 4), foreign, 0));
        assertTrue(e.getMessage().contains("not allocated by this backend"), e.getMessage());
    }

    /**
     * The un-permute as the embedding's gradient uses it: many rows per token, tokens with none,
     * more tokens than the device's one-block scan has threads; the token → rows table is built on
     * the device, and the sums in row order give the CPU's bits.
     */
    @Test
    void permuteBackwardWithManyRowsPerToken() {
        for (int[] nm : new int[][] {{7, 50}, {3000, 2500}, {5, 0}}) {
            int n = nm[0];
            int m = nm[1];
            int d = 9;
            int[] tok = new int[Math.max(m, 1)];
            for (int r = 0; r < m; r++) {
                tok[r] = n == 7 ? rnd.nextInt(5) : rnd.nextInt(n);
            }
            Tensor[] rowToken = ints("rowToken", tok, tok.length);
            Tensor[] dxp = randn("dxp", Math.max(m, 1), d);
            Tensor[] dx = poisoned("dx", n, d);
            cpu.permuteBackward(dx[0], dxp[0].rows(m), rowToken[0], m);
            gpu.permuteBackward(dx[1], dxp[1].rows(m), rowToken[1], m);
            assertArrayEquals(read(cpu, dx[0]), read(gpu, dx[1]), "permuteBackward " + n + " tokens, " + m + " rows");
        }
    }

    /** The batched copies and norm (one wait for many tensors) give what the single ones give. */
    @Test
    void batchedCopiesAndNorm() {
        Tensor[] a = randn("a", 300, 7);
        Tensor[] b = randn("b", 1);
        Tensor[] c = randn("c", 3_000_001);
        List<Tensor> ts = List.of(a[1], b[1], c[1]);
        double single = 0;
        for (Tensor t : ts) {
            single += gpu.sumSquares(t);
        }
        assertEquals(single, gpu.sumSquares(ts), 0.0, "batched sumSquares has the single calls' bits");
        HostBuffer h = gpu.allocateHost("batch", 2100 + 1 + 3_000_001 + 10);
        int[] at = {5, 2106, 2108};
        gpu.read(ts, h, at);
        float[] want = read(cpu, a[0]);
        for (int j = 0; j < want.length; j++) {
            assertEquals(want[j], h.get(5 + j), 0f, "a[" + j + "]");
        }
        assertEquals(read(cpu, c[0])[2_999_999], h.get(2108 + 2_999_999), 0f);
        Tensor[] copies = {gpu.allocate("a2", DType.FLOAT32, 300, 7), gpu.allocate("b2", DType.FLOAT32, 1),
            gpu.allocate("c2", DType.FLOAT32, 3_000_001)};
        gpu.write(List.of(copies), h, at);
        for (int i = 0; i < 3; i++) {
            assertArrayEquals(read(gpu, ts.get(i)), read(gpu, copies[i]), "tensor " + i + " round trip");
        }
    }

    /** The same values on both backends: [0] the CPU's, [1] the GPU's. */
    private Tensor[] pair(String name, float[] v, int... shape) {
        Tensor a = cpu.allocate(name, DType.FLOAT32, shape);
        Tensor b = gpu.allocate(name, DType.FLOAT32, shape);
        cpu.write(a, v);
        gpu.write(b, v);
        return new Tensor[] {a, b};
    }

    private Tensor[] ints(String name, int[] v, int... shape) {
        Tensor a = cpu.allocate(name, DType.INT32, shape);
        Tensor b = gpu.allocate(name, DType.INT32, shape);
        cpu.write(a, v);
        gpu.write(b, v);
        return new Tensor[] {a, b};
    }

    private Tensor[] randn(String name, int... shape) {
        int n = 1;
        for (int d : shape) {
            n *= d;
        }
        float[] v = new float[n];
        for (int j = 0; j < n; j++) {
            v[j] = (float) rnd.nextGaussian();
        }
        return pair(name, v, shape);
    }

    private Tensor[] poisoned(String name, int... shape) {
        Tensor[] t = {cpu.allocate(name, DType.FLOAT32, shape), gpu.allocate(name, DType.FLOAT32, shape)};
        cpu.fill(t[0], Float.NaN);
        gpu.fill(t[1], Float.NaN);
        return t;
    }

    private static float[] read(Backend be, Tensor t) {
        float[] v = new float[t.size()];
        be.read(t, v);
        return v;
    }

    private static int[] readInts(Backend be, Tensor t) {
        int[] v = new int[t.size()];
        be.read(t, v);
        return v;
    }

    /** GPU against CPU: max |diff| ≤ tol · max(1, max |cpu|); NaN anywhere fails. */
    private static void same(String what, Tensor[] t, double tol) {
        float[] want = read(cpu, t[0]);
        float[] got = read(gpu, t[1]);
        double scale = 1;
        for (float w : want) {
            scale = Math.max(scale, Math.abs(w));
        }
        double worst = 0;
        int at = -1;
        for (int j = 0; j < want.length; j++) {
            double d = Float.isNaN(got[j]) || Float.isNaN(want[j]) ? Double.POSITIVE_INFINITY : Math.abs(want[j] - got[j]);
            if (d > worst || at < 0) {
                worst = d;
                at = j;
            }
        }
        System.out.printf("cuda %-50s worst |diff| %.3e (relative %.3e)%n", what, worst, worst / scale);
        assertTrue(worst <= tol * scale, what + ": element " + at + " cpu " + (at < 0 ? 0 : want[at]) + " gpu "
                + (at < 0 ? 0 : got[at]) + ", relative " + worst / scale + " > " + tol);
    }

    /**
     * In fp32, and in bf16 against the CPU's bf16 emulation: both round the same operands the same
     * way and the products are exact, so only the summation order differs.
     */
    @ParameterizedTest(name = "linear n={0} in={1} out={2} {3}")
    @CsvSource({"1, 1, 1, FP32", "7, 5, 3, FP32", "130, 193, 67, FP32", "256, 784, 192, FP32", "64, 64, 64, FP32",
        "1, 1, 1, BF16", "7, 5, 3, BF16", "130, 193, 67, BF16", "256, 784, 192, BF16"})
    void linearForwardAndBackward(int n, int in, int out, Precision p) {
        Tensor[] x = randn("x", n, in);
        Tensor[] w = randn("w", in, out);
        Tensor[] b = randn("b", out);
        Tensor[] y = poisoned("y", n, out);
        cpu.linearForward(y[0], x[0], w[0], b[0], p);
        gpu.linearForward(y[1], x[1], w[1], b[1], p);
        same("linearForward " + n + "x" + in + "x" + out + " " + p, y, 1e-4);
        Tensor[] y2 = poisoned("y2", n, out);
        cpu.linearForward(y2[0], x[0], w[0], null, p);
        gpu.linearForward(y2[1], x[1], w[1], null, p);
        same("linearForward without bias " + p, y2, 1e-4);
        Tensor[] dy = randn("dy", n, out);
        Tensor[] dx = poisoned("dx", n, in);
        Tensor[] dw = randn("dw", in, out);  // accumulates
        Tensor[] db = randn("db", out);
        cpu.linearBackward(dx[0], dw[0], db[0], dy[0], x[0], w[0], p);
        gpu.linearBackward(dx[1], dw[1], db[1], dy[1], x[1], w[1], p);
        same("linearBackward dx " + p, dx, 1e-4);
        same("linearBackward dw (accumulated) " + p, dw, 1e-4);
        same("linearBackward db (accumulated) " + p, db, 1e-4);
        cpu.linearBackward(null, dw[0], null, dy[0], x[0], w[0], p);
        gpu.linearBackward(null, dw[1], null, dy[1], x[1], w[1], p);
        same("linearBackward without dx and db " + p, dw, 1e-4);
    }

    @ParameterizedTest(name = "linearTransposed n={0} in={1} out={2}")
    @CsvSource({"1, 1, 1", "130, 128, 256", "2048, 128, 256"})
    void linearTransposedForwardAndBackward(int n, int in, int out) {
        Tensor[] x = randn("x", n, in);
        Tensor[] w = randn("w", out, in);
        Tensor[] y = poisoned("y", n, out);
        cpu.linearTransposedForward(y[0], x[0], w[0]);
        gpu.linearTransposedForward(y[1], x[1], w[1]);
        same("linearTransposedForward " + n + "x" + in + "x" + out, y, 1e-4);
        Tensor[] dy = randn("dy", n, out);
        Tensor[] dx = poisoned("dx", n, in);
        Tensor[] dw = randn("dw", out, in);  // accumulates
        cpu.linearTransposedBackward(dx[0], dw[0], dy[0], x[0], w[0]);
        gpu.linearTransposedBackward(dx[1], dw[1], dy[1], x[1], w[1]);
        same("linearTransposedBackward dx", dx, 1e-4);
        same("linearTransposedBackward dw (accumulated)", dw, 1e-4);
    }

    /** The plain GEMM kernels against the CPU: fp32, bf16 (and its prefetching variant). */
    @ParameterizedTest(name = "matmul m={0} k={1} n={2} ta={3} tb={4}")
    @CsvSource({"1, 1, 1, false, false", "130, 193, 67, false, false", "64, 192, 384, false, false",
        "257, 129, 300, true, false", "33, 65, 17, false, true", "512, 512, 512, true, true"})
    void matmulFp32AndBf16(int m, int k, int n, boolean ta, boolean tb) {
        Tensor[] a = ta ? randn("a", k, m) : randn("a", m, k);
        Tensor[] b = tb ? randn("b", n, k) : randn("b", k, n);
        Tensor[] c = poisoned("c", m, n);
        // The CPU reference through linear layers: c = op(a)·op(b) with the operands laid out plainly.
        Tensor aPlain = cpu.allocate("aPlain", DType.FLOAT32, m, k);
        Tensor bPlain = cpu.allocate("bPlain", DType.FLOAT32, k, n);
        float[] av = read(cpu, a[0]);
        float[] bv = read(cpu, b[0]);
        float[] ap = new float[m * k];
        float[] bp = new float[k * n];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < k; j++) {
                ap[i * k + j] = ta ? av[j * m + i] : av[i * k + j];
            }
        }
        for (int i = 0; i < k; i++) {
            for (int j = 0; j < n; j++) {
                bp[i * n + j] = tb ? bv[j * k + i] : bv[i * n + j];
            }
        }
        cpu.write(aPlain, ap);
        cpu.write(bPlain, bp);
        cpu.linearForward(c[0], aPlain, bPlain, null);
        gpu.matmul(c[1], a[1], b[1], ta, tb, GemmKernel.FP32);
        same("matmul fp32 " + m + "x" + k + "x" + n, c, 1e-4);
        // bf16 against fp32 (bf16 keeps 8 bits), then against the CPU's bf16 emulation (only the sums' order differs).
        gpu.fill(c[1], Float.NaN);
        gpu.matmul(c[1], a[1], b[1], ta, tb, GemmKernel.BF16);
        same("matmul bf16 vs fp32 " + m + "x" + k + "x" + n, c, 2e-2);
        cpu.linearForward(c[0], aPlain, bPlain, null, Precision.BF16);
        same("matmul bf16 " + m + "x" + k + "x" + n, c, 1e-4);
        // The prefetching kernel does the same WMMA steps in the same order: the same bits.
        Tensor prefetched = gpu.allocate("prefetched", DType.FLOAT32, m, n);
        gpu.fill(prefetched, Float.NaN);
        gpu.matmul(prefetched, a[1], b[1], ta, tb, GemmKernel.BF16_PREFETCH);
        assertArrayEquals(read(gpu, c[1]), read(gpu, prefetched), "bf16 prefetch = bf16, bit for bit");
    }

    @ParameterizedTest(name = "{0} n={1} f={2}")
    @CsvSource({"GELU, 1, 1", "GELU, 9, 384", "SWIGLU, 1, 1", "SWIGLU, 9, 383"})
    void activations(Activation act, int n, int f) {
        Tensor[] a = randn("a", n, act.preWidth(f));
        Tensor[] h = poisoned("h", n, f);
        cpu.activationForward(h[0], a[0], act);
        gpu.activationForward(h[1], a[1], act);
        same(act + " forward", h, 1e-5);
        Tensor[] dh = randn("dh", n, f);
        Tensor[] da = poisoned("da", n, act.preWidth(f));
        cpu.activationBackward(da[0], dh[0], a[0], act);
        gpu.activationBackward(da[1], dh[1], a[1], act);
        same(act + " backward", da, 1e-5);
    }

    /**
     * In fp32 within 1e-4; in bf16 against the CPU's emulation within 5e-4 (h, the second GEMM's
     * operand, can differ by an ulp between the backends' activations and then round to another
     * bf16 value).
     */
    @ParameterizedTest(name = "expertFfn {0}")
    @EnumSource(Precision.class)
    void expertFfnWithEmptyGroups(Precision p) {
        double tol = p == Precision.BF16 ? 5e-4 : 1e-4;
        // Small and odd, then groups over several 128-row tiles with D and F over several columns.
        for (int[][] shape : new int[][][] {{{33, 17}, {0, 5, 5, 12, 13}}, {{160, 200}, {0, 0, 150, 420, 421}}}) {
            expertFfn(p, tol, shape[0][0], shape[0][1], shape[1]);
        }
    }

    private void expertFfn(Precision p, double tol, int d, int f, int[] offsets) {
        int e = offsets.length - 1;
        int m = offsets[e];
        for (Activation act : Activation.values()) {
            int f1 = act.preWidth(f);
            Tensor[] x = randn("x", m, d);
            Tensor[] w1 = randn("w1", e, d, f1);
            Tensor[] b1 = randn("b1", e, f1);
            Tensor[] w2 = randn("w2", e, f, d);
            Tensor[] b2 = randn("b2", e, d);
            Tensor[] y = poisoned("y", m, d);
            Tensor[] a = poisoned("a", m, f1);
            Tensor[] h = poisoned("h", m, f);
            cpu.expertFfnForward(y[0], a[0], h[0], x[0], w1[0], b1[0], w2[0], b2[0], offsets, act, p);
            gpu.expertFfnForward(y[1], a[1], h[1], x[1], w1[1], b1[1], w2[1], b2[1], offsets, act, p);
            same("expertFfnForward " + act + " " + p, y, tol);
            Tensor[] dy = randn("dy", m, d);
            Tensor[] dx = poisoned("dx", m, d);
            Tensor[] dw1 = randn("dw1", e, d, f1);
            Tensor[] db1 = randn("db1", e, f1);
            Tensor[] dw2 = randn("dw2", e, f, d);
            Tensor[] db2 = randn("db2", e, d);
            Tensor[] sdh = poisoned("sdh", m, f);
            Tensor[] sda = poisoned("sda", m, f1);
            cpu.expertFfnBackward(dx[0], dw1[0], db1[0], dw2[0], db2[0], dy[0], x[0], a[0], h[0], w1[0], w2[0], offsets,
                    act, sdh[0], sda[0], p);
            gpu.expertFfnBackward(dx[1], dw1[1], db1[1], dw2[1], db2[1], dy[1], x[1], a[1], h[1], w1[1], w2[1], offsets,
                    act, sdh[1], sda[1], p);
            same("expertFfnBackward dx " + act + " " + p, dx, tol);
            same("expertFfnBackward dw1 " + act + " " + p, dw1, tol);
            same("expertFfnBackward db1 " + act + " " + p, db1, tol);
            same("expertFfnBackward dw2 " + act + " " + p, dw2, tol);
            same("expertFfnBackward db2 " + act + " " + p, db2, tol);
            // One group at a time, each from past row 0 (the MoE layer's pipeline): the CPU's whole call.
            Tensor[] y1 = {y[0], poisoned("y1", m, d)[1]};
            Tensor[] dx1 = {dx[0], poisoned("dx1", m, d)[1]};
            Tensor a1 = poisoned("a1", m, f1)[1];
            Tensor h1 = poisoned("h1", m, f)[1];
            int[] one = new int[e + 1];
            for (int k = 0; k < e; k++) {
                for (int j = 0; j <= e; j++) {
                    one[j] = offsets[j <= k ? k : k + 1];
                }
                gpu.expertFfnForward(y1[1], a1, h1, x[1], w1[1], b1[1], w2[1], b2[1], one, act, p);
                gpu.expertFfnBackwardData(dx1[1], dy[1], a1, w1[1], w2[1], one, act, sdh[1], sda[1], p);
            }
            same("expertFfnForward one group at a time " + act + " " + p, y1, tol);
            same("expertFfnBackwardData one group at a time " + act + " " + p, dx1, tol);
        }
    }

    @ParameterizedTest(name = "norm n={0} d={1} layernorm={2}")
    @CsvSource({"1, 1, true", "5, 192, true", "5, 192, false", "3, 700, true"})
    void norms(int n, int d, boolean layer) {
        Tensor[] x = randn("x", n, d);
        Tensor[] g = randn("gamma", d);
        Tensor[] b = layer ? randn("beta", d) : new Tensor[] {null, null};
        Tensor[] y = poisoned("y", n, d);
        Tensor[] mean = poisoned("mean", n);
        Tensor[] rstd = poisoned("rstd", n);
        cpu.normForward(y[0], mean[0], rstd[0], x[0], g[0], b[0], 1e-5f);
        gpu.normForward(y[1], mean[1], rstd[1], x[1], g[1], b[1], 1e-5f);
        same("normForward", y, 1e-5);
        same("normForward rstd", rstd, 1e-5);
        Tensor[] dy = randn("dy", n, d);
        Tensor[] dx = poisoned("dx", n, d);
        Tensor[] dg = randn("dg", d);
        Tensor[] dbt = layer ? randn("dbeta", d) : new Tensor[] {null, null};
        cpu.normBackward(dx[0], dg[0], dbt[0], dy[0], x[0], mean[0], rstd[0], g[0]);
        gpu.normBackward(dx[1], dg[1], dbt[1], dy[1], x[1], mean[1], rstd[1], g[1]);
        same("normBackward dx", dx, 1e-4);
        same("normBackward dgamma", dg, 1e-4);
        if (layer) {
            same("normBackward dbeta", dbt, 1e-4);
        }
    }

    @Test
    void dropoutJitterAndElementwiseOps() {
        int n = 37;
        int cols = 13;
        Tensor[] x = randn("x", n, cols);
        Tensor[] y = poisoned("y", n, cols);
        cpu.dropoutForward(y[0], x[0], 0.3f, 42, 7, 26);
        gpu.dropoutForward(y[1], x[1], 0.3f, 42, 7, 26);
        assertArrayEquals(read(cpu, y[0]), read(gpu, y[1]), "the same mask and values");
        float[] rates = new float[n];
        float[] amp = new float[n];
        for (int r = 0; r < n; r++) {
            rates[r] = 0.02f * r;
            amp[r] = 0.01f * r;
        }
        Tensor[] pr = pair("rates", rates, n);
        cpu.dropoutRowsForward(y[0], x[0], pr[0], 42, 8, 0);
        gpu.dropoutRowsForward(y[1], x[1], pr[1], 42, 8, 0);
        assertArrayEquals(read(cpu, y[0]), read(gpu, y[1]), "a rate per row");
        Tensor[] pa = pair("amp", amp, n);
        cpu.jitter(y[0], x[0], pa[0], 9, 3, 5);
        gpu.jitter(y[1], x[1], pa[1], 9, 3, 5);
        same("jitter", y, 1e-6);
        Tensor[] b = randn("b", n, cols);
        Tensor[] row = randn("row", cols);
        cpu.multiply(y[0], x[0], b[0]);
        gpu.multiply(y[1], x[1], b[1]);
        same("multiply", y, 1e-6);
        cpu.multiplyAdd(y[0], x[0], row[0]);
        gpu.multiplyAdd(y[1], x[1], row[1]);
        same("multiplyAdd with a row", y, 1e-6);
        Tensor[] acc = randn("acc", cols);
        cpu.sumRowProducts(acc[0], x[0], b[0]);
        gpu.sumRowProducts(acc[1], x[1], b[1]);
        same("sumRowProducts", acc, 1e-5);
        cpu.scaleRows(y[0], pa[0]);
        gpu.scaleRows(y[1], pa[1]);
        same("scaleRows", y, 1e-6);
        cpu.axpy(y[0], 0.5f, x[0]);
        gpu.axpy(y[1], 0.5f, x[1]);
        cpu.scale(y[0], -2f);
        gpu.scale(y[1], -2f);
        same("axpy, scale", y, 1e-6);
        assertEquals(cpu.sumSquares(y[0]), gpu.sumSquares(y[1]), 1e-5 * cpu.sumSquares(y[0]), "sumSquares");
        Tensor[] big = randn("big", 3_000_001);
        assertEquals(cpu.sumSquares(big[0]), gpu.sumSquares(big[1]), 1e-6 * cpu.sumSquares(big[0]), "sumSquares, many blocks");
        Tensor[] copy = poisoned("copy", n, cols);
        cpu.copy(copy[0], y[0]);
        gpu.copy(copy[1], y[1]);
        same("copy", copy, 0);
    }

    @Test
    void lossAndOptimizer() {
        int n = 9;
        int c = 10;
        Tensor[] logits = randn("logits", n, c);
        int[] labels = new int[n];
        for (int r = 0; r < n; r++) {
            labels[r] = r % c;
        }
        Tensor[] y = ints("labels", labels, n);
        Tensor[] losses = poisoned("losses", n);
        Tensor[] probs = poisoned("probs", n, c);
        cpu.crossEntropyForward(losses[0], probs[0], logits[0], y[0]);
        gpu.crossEntropyForward(losses[1], probs[1], logits[1], y[1]);
        same("crossEntropyForward losses", losses, 1e-5);
        same("crossEntropyForward probs", probs, 1e-5);
        Tensor[] dl = poisoned("dLogits", n, c);
        cpu.crossEntropyBackward(dl[0], probs[0], y[0], 1f / n);
        gpu.crossEntropyBackward(dl[1], probs[1], y[1], 1f / n);
        same("crossEntropyBackward", dl, 1e-5);
        IllegalArgumentException shortArray = assertThrows(IllegalArgumentException.class,
                () -> gpu.write(logits[1], new float[n * c - 1]));
        assertTrue(shortArray.getMessage().contains("needs " + n * c + " values"), shortArray.getMessage());
        labels[4] = c;
        Tensor bad = gpu.allocate("bad", DType.INT32, n);
        gpu.write(bad, labels);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> gpu.crossEntropyForward(losses[1], probs[1], logits[1], bad));
        assertTrue(e.getMessage().contains("label 10 at row 4"), e.getMessage());

        Tensor[] w = randn("w", 1000);
        Tensor[] g = randn("g", 1000);
        Tensor[] m = randn("m", 1000);
        float[] v0 = new float[1000];
        for (int j = 0; j < v0.length; j++) {
            v0[j] = (float) Math.abs(rnd.nextGaussian());
        }
        Tensor[] v = pair("v", v0, 1000);
        for (int t = 1; t <= 3; t++) {
            cpu.adamWStep(w[0], g[0], m[0], v[0], 1e-3f, 0.9f, 0.999f, 1e-8f, 0.05f, t);
            gpu.adamWStep(w[1], g[1], m[1], v[1], 1e-3f, 0.9f, 0.999f, 1e-8f, 0.05f, t);
        }
        same("adamWStep w", w, 1e-6);
        same("adamWStep m", m, 1e-6);
        same("adamWStep v", v, 1e-6);
    }

    @Test
    void routingOps() {
        int n = 11;
        int e = 4;
        int k = 2;
        int d = 6;
        for (GateMode mode : GateMode.values()) {
            Tensor[] logits = randn("logits", n, e);
            Tensor[] probs = poisoned("probs", n, e);
            Tensor[] lse = poisoned("lse", n);
            Tensor[] top = ints("top", new int[n * k], n, k);
            Tensor[] gates = poisoned("gates", n, k);
            cpu.gateForward(probs[0], lse[0], top[0], gates[0], logits[0], mode);
            gpu.gateForward(probs[1], lse[1], top[1], gates[1], logits[1], mode);
            same("gateForward probs " + mode, probs, 1e-6);
            same("gateForward gates " + mode, gates, 1e-6);
            assertArrayEquals(readInts(cpu, top[0]), readInts(gpu, top[1]), "top-k " + mode);
            int[] offC = new int[e + 1];
            int[] offG = new int[e + 1];
            int[] selC = new int[e];
            int[] selG = new int[e];
            Tensor[] rowToken = ints("rowToken", new int[n * k], n * k);
            Tensor[] copyRow = ints("copyRow", new int[n * k], n, k);
            int mC = cpu.dispatchPlan(rowToken[0], copyRow[0], offC, selC, top[0], e, 5);
            int mG = gpu.dispatchPlan(rowToken[1], copyRow[1], offG, selG, top[1], e, 5);
            assertEquals(mC, mG);
            assertTrue(mC < n * k, "capacity 5 drops copies");
            assertArrayEquals(offC, offG);
            assertArrayEquals(selC, selG, "choices before the limit");
            assertArrayEquals(java.util.Arrays.copyOf(readInts(cpu, rowToken[0]), mC),
                    java.util.Arrays.copyOf(readInts(gpu, rowToken[1]), mG), "row → token");
            assertArrayEquals(readInts(cpu, copyRow[0]), readInts(gpu, copyRow[1]));
            // Empty slots (a threshold router's): the same plan with fewer copies.
            Tensor[] sparse = ints("sparse", new int[n * k], n, k);
            cpu.selectAtLeast(sparse[0], top[0], gates[0], 0.3f);
            gpu.selectAtLeast(sparse[1], top[1], gates[1], 0.3f);
            assertArrayEquals(readInts(cpu, sparse[0]), readInts(gpu, sparse[1]), "selectAtLeast " + mode);
            int sC = cpu.dispatchPlan(rowToken[0], copyRow[0], offC, selC, sparse[0], e, 0);
            int sG = gpu.dispatchPlan(rowToken[1], copyRow[1], offG, selG, sparse[1], e, 0);
            assertEquals(sC, sG);
            assertArrayEquals(offC, offG, "plan with empty slots");
            assertArrayEquals(readInts(cpu, copyRow[0]), readInts(gpu, copyRow[1]), "plan with empty slots");
            mC = cpu.dispatchPlan(rowToken[0], copyRow[0], offC, selC, top[0], e, 5);
            mG = gpu.dispatchPlan(rowToken[1], copyRow[1], offG, selG, top[1], e, 5);
            Tensor[] x = randn("x", n, d);
            Tensor[] xp = poisoned("xp", n * k, d);
            cpu.permuteForward(xp[0].rows(mC), x[0], rowToken[0], mC);
            gpu.permuteForward(xp[1].rows(mG), x[1], rowToken[1], mG);
            assertArrayEquals(read(cpu, xp[0].rows(mC)), read(gpu, xp[1].rows(mG)), "permute " + mode);
            Tensor[] out = poisoned("out", n, d);
            cpu.unpermuteForward(out[0], xp[0].rows(mC), copyRow[0], gates[0]);
            gpu.unpermuteForward(out[1], xp[1].rows(mG), copyRow[1], gates[1]);
            same("unpermuteForward " + mode, out, 1e-6);
            // Backwards: un-permute, permute (the unweighted un-permute), router losses, gate.
            Tensor[] dy = randn("dy", n, d);
            Tensor[] dyp = poisoned("dyp", n * k, d);
            Tensor[] dGates = poisoned("dGates", n, k);
            cpu.unpermuteBackward(dyp[0], dGates[0], dy[0], xp[0].rows(mC), copyRow[0], gates[0]);
            gpu.unpermuteBackward(dyp[1], dGates[1], dy[1], xp[1].rows(mG), copyRow[1], gates[1]);
            same("unpermuteBackward dyp " + mode, new Tensor[] {dyp[0].rows(mC), dyp[1].rows(mG)}, 1e-6);
            same("unpermuteBackward dGates " + mode, dGates, 1e-5);
            Tensor[] dx = poisoned("dx", n, d);
            cpu.permuteBackward(dx[0], dyp[0].rows(mC), rowToken[0], mC);
            gpu.permuteBackward(dx[1], dyp[1].rows(mG), rowToken[1], mG);
            same("permuteBackward " + mode, dx, 1e-6);
            float[] sumC = new float[e];
            float[] sumG = new float[e];
            cpu.routerStats(probs[0], sumC);
            gpu.routerStats(probs[1], sumG);
            assertArrayEquals(sumC, sumG, 1e-5f, "routerStats");
            float[] lossC = cpu.routerLossForward(lse[0], selC, sumC, n, k, 0.01f, 0.001f, new float[2]);
            float[] lossG = gpu.routerLossForward(lse[1], selG, sumG, n, k, 0.01f, 0.001f, new float[2]);
            assertArrayEquals(lossC, lossG, 1e-6f, "routerLossForward");
            Tensor[] dProbs = poisoned("dProbs", n, e);
            Tensor[] dLse = poisoned("dLse", n);
            cpu.routerLossBackward(dProbs[0], dLse[0], lse[0], selC, n, k, 0.01f, 0.001f, 1f);
            gpu.routerLossBackward(dProbs[1], dLse[1], lse[1], selG, n, k, 0.01f, 0.001f, 1f);
            same("routerLossBackward dProbs", dProbs, 1e-6);
            same("routerLossBackward dLse", dLse, 1e-6);
            Tensor[] dLogits = poisoned("dLogits", n, e);
            cpu.gateBackward(dLogits[0], dGates[0], dProbs[0], dLse[0], probs[0], top[0], gates[0], mode);
            gpu.gateBackward(dLogits[1], dGates[1], dProbs[1], dLse[1], probs[1], top[1], gates[1], mode);
            same("gateBackward " + mode, dLogits, 1e-5);
        }
        // The sigmoid router: biased selection, normalised gates, and its backward with both losses.
        Tensor[] logits = randn("logits", n, e);
        Tensor[] bias = randn("bias", e);
        Tensor[] probs = poisoned("probs", n, e);
        Tensor[] lse = poisoned("lse", n);
        Tensor[] top = ints("top", new int[n * k], n, k);
        Tensor[] gates = poisoned("gates", n, k);
        cpu.sigmoidTopKForward(probs[0], lse[0], top[0], gates[0], logits[0], bias[0]);
        gpu.sigmoidTopKForward(probs[1], lse[1], top[1], gates[1], logits[1], bias[1]);
        assertArrayEquals(readInts(cpu, top[0]), readInts(gpu, top[1]), "sigmoidTopKForward top-k");
        same("sigmoidTopKForward probs", probs, 1e-6);
        same("sigmoidTopKForward lse", lse, 1e-6);
        same("sigmoidTopKForward gates", gates, 1e-6);
        Tensor[] dGates = randn("dGates", n, k);
        Tensor[] dProbs = randn("dProbs", n, e);
        Tensor[] dLse = randn("dLse", n);
        Tensor[] dLogits = poisoned("dLogits", n, e);
        cpu.sigmoidTopKBackward(dLogits[0], dGates[0], dProbs[0], dLse[0], logits[0], lse[0], top[0], gates[0]);
        gpu.sigmoidTopKBackward(dLogits[1], dGates[1], dProbs[1], dLse[1], logits[1], lse[1], top[1], gates[1]);
        same("sigmoidTopKBackward", dLogits, 1e-5);
        cpu.sigmoidTopKBackward(dLogits[0], dGates[0], null, null, logits[0], lse[0], top[0], gates[0]);
        gpu.sigmoidTopKBackward(dLogits[1], dGates[1], null, null, logits[1], lse[1], top[1], gates[1]);
        same("sigmoidTopKBackward, gates only", dLogits, 1e-5);
        assertEquals(cpu.routerEntropy(probs[0]), gpu.routerEntropy(probs[1]), 1e-5, "routerEntropy");
    }

    /**
     * The noisy top-k router: ε from the same Philox normals (so the noisy logits agree to float
     * rounding), the load estimate and its accumulated gradients, the importance sums and their
     * adjoint with empty slots; E up to 130 (one thread walks a row).
     */
    @ParameterizedTest(name = "noisy router n={0} e={1} k={2}")
    @CsvSource({"1, 2, 1", "11, 4, 2", "37, 8, 2", "300, 16, 4", "5, 130, 8", "6, 3, 3"})
    void noisyRouterOps(int n, int e, int k) {
        Tensor[] clean = randn("clean", n, e);
        Tensor[] raw = randn("raw", n, e);
        Tensor[] noisy = poisoned("noisy", n, e);
        cpu.noisyLogitsForward(noisy[0], clean[0], raw[0], 42, 7, 3L * e);
        gpu.noisyLogitsForward(noisy[1], clean[1], raw[1], 42, 7, 3L * e);
        same("noisyLogitsForward", noisy, 1e-6);
        Tensor[] dNoisy = randn("dNoisy", n, e);
        Tensor[] dRaw = poisoned("dRaw", n, e);
        cpu.noisyLogitsBackward(dRaw[0], dNoisy[0], raw[0], 42, 7, 3L * e);
        gpu.noisyLogitsBackward(dRaw[1], dNoisy[1], raw[1], 42, 7, 3L * e);
        same("noisyLogitsBackward", dRaw, 1e-6);
        // The load from the CPU's noisy logits on both, so both rank the same values.
        float[] nv = read(cpu, noisy[0]);
        Tensor[] v = pair("noisyValues", nv, n, e);
        Tensor[] load = poisoned("load", n, e);
        cpu.noisyTopKLoadForward(load[0], clean[0], v[0], raw[0], k);
        gpu.noisyTopKLoadForward(load[1], clean[1], v[1], raw[1], k);
        same("noisyTopKLoadForward", load, 1e-5);
        Tensor[] dLoad = randn("dLoad", n, e);
        Tensor[] dClean = randn("dClean", n, e);
        Tensor[] dv = randn("dNoisyValues", n, e);
        Tensor[] dr = randn("dRawAcc", n, e);
        cpu.noisyTopKLoadBackward(dClean[0], dv[0], dr[0], dLoad[0], clean[0], v[0], raw[0], k);
        gpu.noisyTopKLoadBackward(dClean[1], dv[1], dr[1], dLoad[1], clean[1], v[1], raw[1], k);
        same("noisyTopKLoadBackward dClean", dClean, 1e-5);
        same("noisyTopKLoadBackward dNoisy", dv, 1e-5);
        same("noisyTopKLoadBackward dRaw", dr, 1e-5);

        int[] top = new int[n * k];
        for (int c = 0; c < top.length; c++) {
            top[c] = c % 7 == 2 ? -1 : rnd.nextInt(e);
        }
        Tensor[] idx = ints("topIdx", top, n, k);
        Tensor[] gates = randn("gates", n, k);
        float[] sumC = new float[e];
        float[] sumG = new float[e];
        cpu.expertGateSums(idx[0], gates[0], sumC);
        gpu.expertGateSums(idx[1], gates[1], sumG);
        assertArrayEquals(sumC, sumG, 1e-5f, "expertGateSums");
        Tensor[] dGates = randn("dGates", n, k);
        cpu.addExpertValues(dGates[0], idx[0], sumC);
        gpu.addExpertValues(dGates[1], idx[1], sumC);
        same("addExpertValues", dGates, 1e-6);
        top[top.length - 1] = e;
        Tensor[] bad = ints("bad", top, n, k);
        IllegalArgumentException ex = assertThrows(IllegalArgumentException.class,
                () -> gpu.expertGateSums(bad[1], gates[1], sumG));
        assertEquals(assertThrows(IllegalArgumentException.class, () -> cpu.expertGateSums(bad[0], gates[0], sumC))
                .getMessage(), ex.getMessage(), "the CPU's message");
        assertThrows(IllegalArgumentException.class, () -> gpu.addExpertValues(dGates[1], bad[1], sumC));
    }

    /** The device's Box–Muller normals are Philox.normal's, over a stretch of elements and a far offset. */
    @Test
    void philoxNormalsAreTheCpus() {
        int n = 4099;
        Tensor[] zero = pair("zero", new float[n], 1, n);
        // softplus(raw) = 1 for raw = ln(e − 1): noisy = ε (to the rounding of softplus).
        float[] unit = new float[n];
        java.util.Arrays.fill(unit, (float) Math.log(Math.E - 1));
        Tensor[] raw = pair("raw", unit, 1, n);
        for (long first : new long[] {0, 1, (1L << 40) + 3}) {
            Tensor[] eps = poisoned("eps", 1, n);
            cpu.noisyLogitsForward(eps[0], zero[0], raw[0], 99, 5, first);
            gpu.noisyLogitsForward(eps[1], zero[1], raw[1], 99, 5, first);
            same("normals from element " + first, eps, 1e-6);
        }
    }

    // ---- transformer ----------------------------------------------------------------------------

    @ParameterizedTest(name = "rope n={0} heads={1} dh={2} period={3} firstPos={4}")
    @CsvSource({"1, 1, 2, 1, 0", "6, 2, 8, 3, 0", "37, 4, 64, 16, 1000", "5, 3, 128, 100, 17"})
    void rope(int n, int heads, int dh, int period, int firstPos) {
        Tensor[] x = randn("x", n, heads * dh);
        Tensor[] y = poisoned("y", n, heads * dh);
        cpu.rope(y[0], x[0], dh, period, firstPos, 10_000f, false);
        gpu.rope(y[1], x[1], dh, period, firstPos, 10_000f, false);
        same("rope " + n + "x" + heads + "x" + dh + " @" + firstPos, y, 1e-5);
        cpu.rope(y[0], y[0], dh, period, firstPos, 10_000f, true);
        gpu.rope(y[1], y[1], dh, period, firstPos, 10_000f, true);
        same("rope inverse, in place", y, 1e-5);
    }

    /**
     * Against the CPU on the shapes the kernels tile differently: partial tiles, one query against a
     * cache, grouped-query heads, head widths on both sides of 64 (two kernel widths), dropout,
     * 1024 tokens. The backward twice: the same bits both times (no atomics).
     */
    @ParameterizedTest(name = "attention B={0} Tq={1} Tk={2} H={3} Hkv={4} dh={5} dropout={6}")
    @CsvSource({
        "1, 1, 1, 1, 1, 2, 0",
        "2, 5, 5, 2, 2, 4, 0",
        "2, 37, 50, 4, 2, 16, 0.2",
        "1, 1, 100, 2, 2, 64, 0",
        "2, 70, 70, 4, 1, 64, 0.1",
        "1, 33, 45, 3, 1, 80, 0.25",
        "2, 40, 40, 2, 2, 128, 0",
        "1, 1024, 1024, 2, 1, 64, 0.1",
    })
    void attention(int batch, int tq, int tk, int heads, int kvHeads, int dh, double rate) {
        String tag = "attention B" + batch + " Tq" + tq + " Tk" + tk + " H" + heads + "/" + kvHeads + " dh" + dh
                + (rate > 0 ? " dropout" : "");
        float scale = (float) (1 / Math.sqrt(dh));
        Tensor[] q = randn("q", batch * tq, heads * dh);
        Tensor[] k = randn("k", batch * tk, kvHeads * dh);
        Tensor[] v = randn("v", batch * tk, kvHeads * dh);
        Tensor[] dOut = randn("dOut", batch * tq, heads * dh);
        Tensor[] rates = {null, null};
        if (rate > 0) {
            float[] r = new float[batch * tq];
            for (int row = 0; row < batch * tq; row++) {
                r[row] = row % 3 == 0 ? 0f : (float) (rate * (row + 1) / (batch * tq));  // some rows keep everything
            }
            rates = pair("rates", r, batch * tq);
        }
        Tensor[] out = poisoned("out", batch * tq, heads * dh);
        Tensor[] lse = poisoned("lse", batch * tq, heads);
        cpu.attentionForward(out[0], lse[0], q[0], k[0], v[0], batch, heads, kvHeads, scale, rates[0], 99, 5, 3);
        gpu.attentionForward(out[1], lse[1], q[1], k[1], v[1], batch, heads, kvHeads, scale, rates[1], 99, 5, 3);
        same(tag + " out", out, 1e-4);
        same(tag + " lse", lse, 1e-5);
        Tensor[] dq = poisoned("dq", batch * tq, heads * dh);
        Tensor[] dk = poisoned("dk", batch * tk, kvHeads * dh);
        Tensor[] dv = poisoned("dv", batch * tk, kvHeads * dh);
        cpu.attentionBackward(dq[0], dk[0], dv[0], dOut[0], out[0], lse[0], q[0], k[0], v[0], batch, heads, kvHeads,
                scale, rates[0], 99, 5, 3);
        gpu.attentionBackward(dq[1], dk[1], dv[1], dOut[1], out[1], lse[1], q[1], k[1], v[1], batch, heads, kvHeads,
                scale, rates[1], 99, 5, 3);
        same(tag + " dq", dq, 1e-4);
        same(tag + " dk", dk, 1e-4);
        same(tag + " dv", dv, 1e-4);
        float[][] first = {read(gpu, dq[1]), read(gpu, dk[1]), read(gpu, dv[1])};
        for (Tensor t : new Tensor[] {dq[1], dk[1], dv[1]}) {
            gpu.fill(t, Float.NaN);
        }
        gpu.attentionBackward(dq[1], dk[1], dv[1], dOut[1], out[1], lse[1], q[1], k[1], v[1], batch, heads, kvHeads,
                scale, rates[1], 99, 5, 3);
        assertArrayEquals(first[0], read(gpu, dq[1]), tag + ": dq of a second run, bit for bit");
        assertArrayEquals(first[1], read(gpu, dk[1]), tag + ": dk of a second run, bit for bit");
        assertArrayEquals(first[2], read(gpu, dv[1]), tag + ": dv of a second run, bit for bit");
    }

    /**
     * The attention dropout masks are the CPU's, element for element: with one-hot values (v_j =
     * e_j) output row i holds the dropped probabilities of query i, 0 exactly where one is dropped
     * (or masked); with one-hot output gradients (dOut_i = e_i) dv row j holds what reached key j
     * from each query (the dK/dV kernel's masks). Grouped-query heads, fewer queries than keys, two
     * tiles of keys, a rate per sequence.
     */
    @Test
    void attentionDropoutMasksAreTheCpus() {
        int batch = 2;
        int tq = 40;
        int tk = 48;
        int heads = 4;
        int kvHeads = 2;
        int dh = 64;
        float[] oneHotV = new float[batch * tk * kvHeads * dh];
        for (int row = 0; row < batch * tk; row++) {
            for (int h = 0; h < kvHeads; h++) {
                oneHotV[(row * kvHeads + h) * dh + row % tk] = 1;
            }
        }
        float[] oneHotDOut = new float[batch * tq * heads * dh];
        for (int row = 0; row < batch * tq; row++) {
            for (int h = 0; h < heads; h++) {
                oneHotDOut[(row * heads + h) * dh + row % tq] = 1;
            }
        }
        Tensor[] q = randn("q", batch * tq, heads * dh);
        Tensor[] k = randn("k", batch * tk, kvHeads * dh);
        Tensor[] v = pair("v", oneHotV, batch * tk, kvHeads * dh);
        Tensor[] dOut = pair("dOut", oneHotDOut, batch * tq, heads * dh);
        float[] rowRates = new float[batch * tq];
        for (int row = 0; row < rowRates.length; row++) {
            rowRates[row] = row < tq ? 0.3f : 0.5f;
        }
        Tensor[] rates = pair("rates", rowRates, batch * tq);
        Tensor[] out = poisoned("out", batch * tq, heads * dh);
        Tensor[] lse = poisoned("lse", batch * tq, heads);
        float scale = 0.125f;
        cpu.attentionForward(out[0], lse[0], q[0], k[0], v[0], batch, heads, kvHeads, scale, rates[0], 42, 9, 5);
        gpu.attentionForward(out[1], lse[1], q[1], k[1], v[1], batch, heads, kvHeads, scale, rates[1], 42, 9, 5);
        // Without dropout, out row i and dv row j would be 0 only past what they see.
        int unseenOut = 0;
        int unseenDv = 0;
        for (int i = 0; i < tq; i++) {
            unseenOut += batch * heads * (dh - (tk - tq + i + 1));
        }
        for (int j = 0; j < tk; j++) {
            unseenDv += batch * kvHeads * (dh - Math.min(tq, tq - (j - (tk - tq))));
        }
        sameZeros("attention dropout: out = the dropped probabilities", out, unseenOut);
        Tensor[] dq = poisoned("dq", batch * tq, heads * dh);
        Tensor[] dk = poisoned("dk", batch * tk, kvHeads * dh);
        Tensor[] dv = poisoned("dv", batch * tk, kvHeads * dh);
        cpu.attentionBackward(dq[0], dk[0], dv[0], dOut[0], out[0], lse[0], q[0], k[0], v[0], batch, heads, kvHeads,
                scale, rates[0], 42, 9, 5);
        gpu.attentionBackward(dq[1], dk[1], dv[1], dOut[1], out[1], lse[1], q[1], k[1], v[1], batch, heads, kvHeads,
                scale, rates[1], 42, 9, 5);
        sameZeros("attention dropout: dv = what reached each key", dv, unseenDv);
        same("attention dropout dq", dq, 1e-4);
        same("attention dropout dk", dk, 1e-4);
    }

    /** The GPU's exact zeros are the CPU's, and dropout made more of them than the {@code unseen} ones. */
    private static void sameZeros(String what, Tensor[] t, int unseen) {
        float[] want = read(cpu, t[0]);
        float[] got = read(gpu, t[1]);
        int zeros = 0;
        for (int j = 0; j < want.length; j++) {
            assertEquals(want[j] == 0f, got[j] == 0f, what + ": element " + j + " cpu " + want[j] + " gpu " + got[j]);
            zeros += want[j] == 0f ? 1 : 0;
        }
        System.out.printf("cuda %-50s %d zeros, the CPU's%n", what, zeros);
        assertTrue(zeros > unseen, what + ": " + zeros + " zeros, no more than the " + unseen + " unseen elements");
    }

    @Test
    void sigmoidGate() {
        int n = 1001;
        float[] gv = new float[n];
        for (int j = 0; j < n; j++) {
            gv[j] = (float) (10 * rnd.nextGaussian());  // both branches of the stable sigmoid, and saturation
        }
        Tensor[] x = randn("x", n);
        Tensor[] g = pair("g", gv, n);
        Tensor[] y = poisoned("y", n);
        cpu.sigmoidGateForward(y[0], x[0], g[0]);
        gpu.sigmoidGateForward(y[1], x[1], g[1]);
        same("sigmoidGateForward", y, 1e-6);
        Tensor[] dy = randn("dy", n);
        Tensor[] dx = poisoned("dx", n);
        Tensor[] dg = poisoned("dg", n);
        cpu.sigmoidGateBackward(dx[0], dg[0], dy[0], x[0], g[0]);
        gpu.sigmoidGateBackward(dx[1], dg[1], dy[1], x[1], g[1]);
        same("sigmoidGateBackward dx", dx, 1e-6);
        same("sigmoidGateBackward dg", dg, 1e-6);
    }

    @Test
    void imageOps() {
        int g = 5;
        Tensor[] x = randn("images", g, 2 * 28 * 28);
        Tensor[] xp = poisoned("patches", g * 49, 2 * 16);
        cpu.patchesForward(xp[0], x[0], 2, 28, 4);
        gpu.patchesForward(xp[1], x[1], 2, 28, 4);
        same("patchesForward", xp, 0);
        Tensor[] dx = poisoned("dImages", g, 2 * 28 * 28);
        cpu.patchesBackward(dx[0], xp[0], 2, 28, 4);
        gpu.patchesBackward(dx[1], xp[1], 2, 28, 4);
        same("patchesBackward", dx, 0);
        Tensor[] t = randn("t", g * 49, 24);
        Tensor[] tt = poisoned("tt", g * 24, 49);
        cpu.transposeGroups(tt[0], t[0], g);
        gpu.transposeGroups(tt[1], t[1], g);
        same("transposeGroups", tt, 0);
        Tensor[] mean = poisoned("mean", g, 24);
        cpu.meanGroupsForward(mean[0], t[0], g);
        gpu.meanGroupsForward(mean[1], t[1], g);
        same("meanGroupsForward", mean, 0);
        cpu.meanGroupsBackward(t[0], mean[0], g);
        gpu.meanGroupsBackward(t[1], mean[1], g);
        same("meanGroupsBackward", t, 0);
    }
}
