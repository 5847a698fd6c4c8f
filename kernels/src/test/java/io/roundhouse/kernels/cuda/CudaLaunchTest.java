package io.roundhouse.kernels.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.roundhouse.kernels.Activation;
import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.GateMode;
import io.roundhouse.kernels.HostBuffer;
import io.roundhouse.kernels.Precision;
import io.roundhouse.kernels.Tensor;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.Proxy;
import java.util.Arrays;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

/**
 * Without a GPU (in CI): every op of the CUDA backend runs on {@link LaunchCheckDevice}, which
 * checks each kernel launch against the kernel's C signature (argument count and types, tensor
 * dtypes, tensors inside their allocations, grid limits). Every method of {@link Backend} is called
 * and every kernel in {@code src/main/cuda} is launched at least once, in fp32 and bf16, every
 * activation, norm and gate mode. What the kernels compute is {@link CudaOpsTest}'s job, on a GPU.
 */
class CudaLaunchTest {
    private final LaunchCheckDevice dev = new LaunchCheckDevice();
    private final Set<String> called = new TreeSet<>();

    @Test
    void everyOpLaunchesItsKernelsWithMatchingArguments() {
        CudaBackend cuda = new CudaBackend(dev);
        Backend be = (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class},
                (proxy, m, args) -> {
                    called.add(m.getName());
                    try {
                        return m.invoke(cuda, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
        int n = 37;
        int d = 24;
        int e = 5;
        int k = 2;
        int f = 19;
        Tensor x = be.allocate("x", DType.FLOAT32, n, d);
        Tensor y = be.allocate("y", DType.FLOAT32, n, d);
        Tensor rows = be.allocate("rowValues", DType.FLOAT32, n);
        Tensor row = be.allocate("row", DType.FLOAT32, d);
        float[] host = new float[n * d];
        int[] ints = new int[n * k];
        be.write(x, host);
        be.read(x, host);
        be.write(x, host, 0);
        be.read(x, host, 0);
        HostBuffer h = be.allocateHost("staging", n * d);
        be.read(x, h, 0);
        be.write(y, h, 0);
        be.writeRows(y, 2, 3, h, d);
        be.readRows(y, 2, 3, h, d);
        be.read(java.util.List.of(x, row), h, new int[] {0, n * d - d});
        be.write(java.util.List.of(y, row), h, new int[] {0, 5});
        be.sumSquares(java.util.List.of(x, row, rows));
        be.fill(y, 1f);
        be.copy(y, x);
        be.axpy(y, 0.5f, x);
        be.scale(y, 2f);
        be.sumSquares(y);
        be.dropoutForward(y, x, 0.2f, 1, 2, 3);
        be.dropoutBackward(y, x, 0.2f, 1, 2, 3);
        be.dropoutRowsForward(y, x, rows, 1, 2, 3);
        be.dropoutRowsBackward(y, x, rows, 1, 2, 3);
        be.jitter(y, x, rows, 1, 2, 3);
        be.multiply(y, x, x);
        be.multiply(y, x, row);
        be.multiplyAdd(y, x, row);
        be.sumRowProducts(row, x, y);
        be.scaleRows(y, rows);

        for (Precision p : Precision.values()) {
            Tensor w = be.allocate("w", DType.FLOAT32, d, f);
            Tensor b = be.allocate("b", DType.FLOAT32, f);
            Tensor out = be.allocate("out", DType.FLOAT32, n, f);
            be.linearForward(out, x, w, b, p);
            be.linearForward(out, x, w, null);
            be.linearBackward(y, w, b, out, x, w, p);
            be.linearBackward(null, w, null, out, x, w);
            Tensor table = be.allocate("table", DType.FLOAT32, f, d);
            be.linearTransposedForward(out, x, table);
            be.linearTransposedBackward(y, table, out, x, table);
            for (GemmKernel kernel : GemmKernel.values()) {
                cuda.matmul(out, x, w, false, false, kernel);
            }
            for (Activation act : Activation.values()) {
                int f1 = act.preWidth(f);
                int[] offsets = {0, 10, 10, 30, 31, n};
                Tensor w1 = be.allocate("w1", DType.FLOAT32, e, d, f1);
                Tensor b1 = be.allocate("b1", DType.FLOAT32, e, f1);
                Tensor w2 = be.allocate("w2", DType.FLOAT32, e, f, d);
                Tensor b2 = be.allocate("b2", DType.FLOAT32, e, d);
                Tensor a = be.allocate("a", DType.FLOAT32, n, f1);
                Tensor hid = be.allocate("h", DType.FLOAT32, n, f);
                be.expertFfnForward(y, a, hid, x, w1, b1, w2, b2, offsets, act, p);
                be.expertFfnForward(y, a, hid, x, w1, null, w2, null, offsets, act);
                be.expertFfnBackward(x, w1, b1, w2, b2, y, x, a, hid, w1, w2, offsets, act, hid, a, p);
                be.expertFfnBackward(x, w1, null, w2, null, y, x, a, hid, w1, w2, offsets, act, hid, a);
                be.expertFfnBackwardData(x, y, a, w1, w2, offsets, act, hid, a, p);
                int[] one = {10, 10, 10, 30, 30, 30};  // one group, from past row 0 (the pipelined layer's)
                be.expertFfnForward(y, a, hid, x, w1, b1, w2, b2, one, act, p);
                be.expertFfnBackwardData(x, y, a, w1, w2, one, act, hid, a, p);
                be.expertFfnBackwardWeights(w1, b1, w2, b2, y, x, hid, offsets, a, p);
                be.activationForward(hid, a, act);
                be.activationBackward(a, hid, a, act);
            }
        }
        Tensor mean = be.allocate("mean", DType.FLOAT32, n);
        Tensor rstd = be.allocate("rstd", DType.FLOAT32, n);
        be.normForward(y, mean, rstd, x, row, row, 1e-5f);
        be.normForward(y, mean, rstd, x, row, null, 1e-5f);
        be.normBackward(y, row, row, x, x, mean, rstd, row);
        be.normBackward(y, row, null, x, x, mean, rstd, row);

        Tensor logits = be.allocate("logits", DType.FLOAT32, n, e);
        Tensor probs = be.allocate("probs", DType.FLOAT32, n, e);
        Tensor lse = be.allocate("lse", DType.FLOAT32, n);
        Tensor top = be.allocate("top", DType.INT32, n, k);
        Tensor gates = be.allocate("gates", DType.FLOAT32, n, k);
        Tensor dGates = be.allocate("dGates", DType.FLOAT32, n, k);
        Tensor dProbs = be.allocate("dProbs", DType.FLOAT32, n, e);
        Tensor dLse = be.allocate("dLse", DType.FLOAT32, n);
        Tensor rowToken = be.allocate("rowToken", DType.INT32, n * k);
        Tensor copyRow = be.allocate("copyRow", DType.INT32, n, k);
        Tensor xp = be.allocate("xp", DType.FLOAT32, n * k, d);
        be.write(top, ints);
        be.read(top, ints);
        for (GateMode mode : GateMode.values()) {
            be.gateForward(probs, lse, top, gates, logits, mode);
            int[] offsets = new int[e + 1];
            int[] selected = new int[e];
            be.dispatchPlan(rowToken, copyRow, offsets, selected, top, e, 16);
            be.dispatchPlan(rowToken, copyRow, offsets, selected, top, e, 0);
            int m = n * k - 3;  // the fake's plan keeps nothing: the row-moving ops get rows of their own
            be.permuteForward(xp.rows(m), x, rowToken, m);
            be.unpermuteForward(y, xp.rows(m), copyRow, gates);
            be.unpermuteForward(y, xp.rows(m), copyRow, null);
            be.unpermuteBackward(xp.rows(m), dGates, y, xp.rows(m), copyRow, gates);
            be.unpermuteBackward(xp.rows(m), null, y, xp.rows(m), copyRow, gates);
            be.permuteBackward(x, xp.rows(m), rowToken, m);
            float[] probSums = new float[e];
            be.routerStats(probs, probSums);
            be.routerLossForward(lse, selected, probSums, n, k, 0.01f, 0.001f, new float[2]);
            be.routerLossBackward(dProbs, dLse, lse, selected, n, k, 0.01f, 0.001f, 1f);
            be.gateBackward(logits, dGates, dProbs, dLse, probs, top, gates, mode);
            be.gateBackward(logits, dGates, null, null, probs, top, gates, mode);
        }
        Tensor bias = be.allocate("bias", DType.FLOAT32, e);
        be.sigmoidTopKForward(probs, lse, top, gates, logits, bias);
        be.sigmoidTopKBackward(probs, dGates, dProbs, dLse, logits, lse, top, gates);
        be.sigmoidTopKBackward(probs, dGates, null, null, logits, lse, top, gates);
        be.selectAtLeast(copyRow, top, gates, 0.2f);
        be.routerEntropy(probs);
        // The noisy top-k router: k < E launches the load kernels, k ≥ E fills 1 and adds nothing.
        Tensor noisy = be.allocate("noisy", DType.FLOAT32, n, e);
        Tensor raw = be.allocate("raw", DType.FLOAT32, n, e);
        Tensor load = be.allocate("load", DType.FLOAT32, n, e);
        be.noisyLogitsForward(noisy, logits, raw, 1, 2, 3);
        be.noisyLogitsBackward(raw, dProbs, raw, 1, 2, 3);
        for (int topK : new int[] {k, e}) {
            be.noisyTopKLoadForward(load, logits, noisy, raw, topK);
            be.noisyTopKLoadBackward(dProbs, probs, raw, load, logits, noisy, raw, topK);
        }
        float[] perExpert = new float[e];
        be.expertGateSums(top, gates, perExpert);
        be.addExpertValues(dGates, top, perExpert);
        Tensor labels = be.allocate("labels", DType.INT32, n);
        Tensor losses = be.allocate("losses", DType.FLOAT32, n);
        be.crossEntropyForward(losses, probs, logits, labels);
        be.crossEntropyBackward(logits, probs, labels, 1f / n);
        be.adamWStep(x, y, x, y, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 1);

        // The transformer's ops: rope (in place too), attention with both kernel widths (head widths
        // 3, 16, 64, 80, 128), grouped-query heads, fewer queries than keys, dropout on and off.
        Tensor heads4 = be.allocate("heads4", DType.FLOAT32, n, 4 * 16);
        be.rope(heads4, heads4, 16, 7, 3, 10_000f, false);
        be.rope(y, x, 8, n, 0, 500f, true);
        for (int[] a : new int[][] {{2, 5, 5, 4, 2, 16, 1}, {2, 5, 5, 4, 2, 16, 0}, {1, 3, 70, 2, 1, 64, 0},
            {3, 1, 9, 4, 4, 3, 1}, {2, 33, 33, 2, 2, 128, 1}, {1, 40, 47, 6, 2, 80, 0}}) {
            attention(be, a[0], a[1], a[2], a[3], a[4], a[5], a[6] == 1);
        }
        Tensor gate = be.allocate("gate", DType.FLOAT32, n, d);
        Tensor dGate = be.allocate("dGate", DType.FLOAT32, n, d);
        be.sigmoidGateForward(y, x, gate);
        be.sigmoidGateBackward(x, dGate, y, x, gate);
        // Images: patches of 28×28 in 4×4 and of 3 channels of 6×6 in 3×3; transposes and means.
        Tensor images = be.allocate("images", DType.FLOAT32, 3, 28 * 28);
        Tensor patches = be.allocate("patches", DType.FLOAT32, 3 * 49, 16);
        be.patchesForward(patches, images, 1, 28, 4);
        be.patchesBackward(images, patches, 1, 28, 4);
        Tensor rgb = be.allocate("rgb", DType.FLOAT32, 2, 3 * 36);
        Tensor rgbPatches = be.allocate("rgbPatches", DType.FLOAT32, 2 * 4, 27);
        be.patchesForward(rgbPatches, rgb, 3, 6, 3);
        Tensor mixed = be.allocate("mixed", DType.FLOAT32, 3 * 16, 49);
        be.transposeGroups(mixed, patches, 3);
        be.transposeGroups(patches, mixed, 3);
        Tensor pooled = be.allocate("pooled", DType.FLOAT32, 3, 16);
        be.meanGroupsForward(pooled, patches, 3);
        be.meanGroupsBackward(patches, pooled, 3);
        be.name();
        be.close();

        System.out.println("kernel launches checked: " + dev.launched);
        assertEquals("[]", dev.problems.toString(), "launches that do not match their kernels:\n"
                + String.join("\n", dev.problems));
        assertEquals(new TreeSet<>(), dev.neverLaunched(), "kernels no op launched here");
        Set<String> ops = new TreeSet<>();
        for (Method m : Backend.class.getMethods()) {
            if (!Modifier.isStatic(m.getModifiers())) {
                ops.add(m.getName());
            }
        }
        ops.removeAll(called);
        assertEquals(new TreeSet<>(), ops, "Backend methods this test does not call");
        assertTrue(dev.signatures.size() >= 40, "kernels found in the sources: " + dev.signatures.keySet());
    }

    /** Attention forward and backward on tensors of the shapes the op's Javadoc gives. */
    private static void attention(Backend be, int batch, int tq, int tk, int heads, int kvHeads, int dh,
                                  boolean dropout) {
        Tensor q = be.allocate("q", DType.FLOAT32, batch * tq, heads * dh);
        Tensor k = be.allocate("k", DType.FLOAT32, batch * tk, kvHeads * dh);
        Tensor v = be.allocate("v", DType.FLOAT32, batch * tk, kvHeads * dh);
        Tensor out = be.allocate("out", DType.FLOAT32, batch * tq, heads * dh);
        Tensor lse = be.allocate("lse", DType.FLOAT32, batch * tq, heads);
        Tensor rates = dropout ? be.allocate("rates", DType.FLOAT32, batch * tq) : null;
        Tensor dOut = be.allocate("dOut", DType.FLOAT32, batch * tq, heads * dh);
        Tensor dq = be.allocate("dq", DType.FLOAT32, batch * tq, heads * dh);
        Tensor dk = be.allocate("dk", DType.FLOAT32, batch * tk, kvHeads * dh);
        Tensor dv = be.allocate("dv", DType.FLOAT32, batch * tk, kvHeads * dh);
        float scale = (float) (1 / Math.sqrt(dh));
        be.attentionForward(out, lse, q, k, v, batch, heads, kvHeads, scale, rates, 7, 8, 2);
        be.attentionBackward(dq, dk, dv, dOut, out, lse, q, k, v, batch, heads, kvHeads, scale, rates, 7, 8, 2);
    }

    /** Head widths over the widest tiles are refused with the width and what to do, before any launch. */
    @Test
    void attentionRefusesHeadsWiderThan128() {
        CudaBackend cuda = new CudaBackend(dev);
        Tensor q = cuda.allocate("q", DType.FLOAT32, 4, 2 * 136);
        Tensor k = cuda.allocate("k", DType.FLOAT32, 4, 136);
        Tensor lse = cuda.allocate("lse", DType.FLOAT32, 4, 2);
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> cuda.attentionForward(q, lse, q, k, k, 1, 2, 1, 1f, null, 0, 0, 0));
        assertEquals("attentionForward: head width 136 is over the CUDA backend's 128 (transformer.cu's widest "
                + "tiles): split the model width into more heads", e.getMessage());
        assertEquals(new java.util.TreeMap<>(), dev.launched);
    }

    /** The checker itself: it names a wrong argument count, a wrong type and a tensor of the wrong dtype. */
    @Test
    void theCheckerCatchesMismatches() {
        CudaBackend cuda = new CudaBackend(dev);
        Tensor f32 = cuda.allocate("f", DType.FLOAT32, 8);
        Tensor i32 = cuda.allocate("i", DType.INT32, 8);
        dev.launch("too few", "rh_fill", 1, 1, 256, f32, 1f);
        dev.launch("a float for a long", "rh_fill", 1, 1, 256, f32, 1f, 8f);
        dev.launch("ints for floats", "rh_fill", 1, 1, 256, i32, 1f, 8L);
        dev.launch("grid", "rh_fill", 1, 70_000, 256, f32, 1f, 8L);
        dev.launch("unknown", "rh_nothing", 1, 1, 256);
        dev.launch("too many threads", "rh_sgemm", 1, 1, 512, 0, 0, 1, 1, 1, 1f, f32, 1, f32, 1, 0f, f32, 1);
        assertEquals(6, dev.problems.size(), String.join("\n", dev.problems));
        String all = String.join("\n", dev.problems);
        for (String want : new String[] {"2 arguments for 3 parameters", "a Float where Long goes", "is INT32, the "
                + "kernel reads float*", "outside CUDA's limits", "no such kernel", "built for at most 256"}) {
            assertTrue(all.contains(want), want + " in:\n" + all);
        }
        assertTrue(Arrays.asList(dev.signatures.get("rh_sgemm_grouped_rows").toArray()).contains("long long"));
    }
}
