import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.training.GradientCollector;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One MoE layer's forward + backward in PyTorch 2.7 on the CPU through DJL, as a user writes it: a
 * router, softmax over the top-k logits, per expert its rows gathered and its FFN (GELU, or SwiGLU),
 * the weighted copies put back in (token, slot) order and summed, then backward of sum(out ⊙ dy)
 * (PyTorch's out.backward(dy)). The same computation as scripts/torch_layer_bench.py, whose
 * index_add_ DJL lacks. Prints one JSON line: median, min, max milliseconds.
 *
 * <p>Run through scripts/djl-layer-bench (it resolves the class path offline-capable and sets the
 * threads): --tokens N --dim D --ffn F --experts E --topk K [--activation gelu|swiglu]
 * [--threads T] [--seconds S].
 */
public final class DjlLayerBench {
    /**
     * The first step's self-check: the routed output against every expert run on every token and
     * weighted by its gate where chosen (zero elsewhere); the largest absolute difference.
     */
    private static double denseDifference(NDManager s, NDArray x, NDArray w1, NDArray w2, NDArray gates, long[] idx,
                                          NDArray out, int e, int k, int f) {
        long n = x.getShape().get(0);
        float[] g = gates.toFloatArray();
        NDArray dense = x.zerosLike();
        for (int j = 0; j < e; j++) {
            float[] weight = new float[(int) n];
            for (int t = 0; t < n; t++) {
                for (int slot = 0; slot < k; slot++) {
                    if (idx[t * k + slot] == j) {
                        weight[t] += g[t * k + slot];
                    }
                }
            }
            NDArray h = x.matMul(w1.get(j));
            if (f != h.getShape().get(1)) {
                NDArray gate = h.get(new NDIndex(":, :{}", f));
                h = gate.mul(Activation.sigmoid(gate)).mul(h.get(new NDIndex(":, {}:", f)));
            } else {
                h = Activation.gelu(h);
            }
            dense = dense.add(h.matMul(w2.get(j)).mul(s.create(weight).reshape(n, 1)));
        }
        return dense.sub(out).abs().max().getFloat();
    }

    public static void main(String[] args) {
        int n = 0, d = 0, f = 0, e = 0, k = 0, threads = Runtime.getRuntime().availableProcessors();
        double seconds = 1;
        String act = "gelu";
        for (int i = 0; i + 1 < args.length; i += 2) {
            String v = args[i + 1];
            switch (args[i]) {
                case "--tokens" -> n = Integer.parseInt(v);
                case "--dim" -> d = Integer.parseInt(v);
                case "--ffn" -> f = Integer.parseInt(v);
                case "--experts" -> e = Integer.parseInt(v);
                case "--topk" -> k = Integer.parseInt(v);
                case "--activation" -> act = v;
                case "--threads" -> threads = Integer.parseInt(v);
                case "--seconds" -> seconds = Double.parseDouble(v);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        if (n <= 0 || d <= 0 || f <= 0 || e <= 0 || k <= 0 || k > e) {
            System.err.println("usage: --tokens N --dim D --ffn F --experts E --topk K [--activation gelu|swiglu] "
                    + "[--threads T] [--seconds S]");
            System.exit(2);
        }
        boolean swiglu = act.equals("swiglu");
        int f1 = swiglu ? 2 * f : f;
        Engine engine = Engine.getEngine("PyTorch");
        try (NDManager m = NDManager.newBaseManager()) {
            engine.setRandomSeed(1);
            NDArray x = m.randomNormal(new Shape(n, d));
            NDArray dy = m.randomNormal(new Shape(n, d));
            NDArray router = m.randomNormal(new Shape(d, e)).div(Math.sqrt(d));
            NDArray w1 = m.randomNormal(new Shape(e, d, f1)).div(Math.sqrt(d));
            NDArray w2 = m.randomNormal(new Shape(e, f, d)).div(Math.sqrt(f));
            for (NDArray t : List.of(x, router, w1, w2)) {
                t.setRequiresGradient(true);
            }
            int dd = d, ff = f, ee = e, kk = k, nn = n;
            double[] check = {-1};
            Runnable step = () -> {
                try (NDManager s = m.newSubManager(); GradientCollector gc = engine.newGradientCollector()) {
                    NDArray logits = x.matMul(router);
                    logits.attach(s);
                    NDList top = logits.topK(kk, 1);
                    NDArray gates = top.get(0).softmax(1);
                    long[] idx = top.get(1).toLongArray();
                    // The copies of each expert, in expert order: their tokens and slots.
                    List<long[]> rowsOf = new ArrayList<>();
                    long[] perm = new long[nn * kk];  // (token, slot) -> its place in expert order
                    int at = 0;
                    for (int j = 0; j < ee; j++) {
                        long[] rows = new long[nn * kk];
                        int c = 0;
                        for (int t = 0; t < nn; t++) {
                            for (int slot = 0; slot < kk; slot++) {
                                if (idx[t * kk + slot] == j) {
                                    rows[c++] = (long) t * kk + slot;
                                    perm[t * kk + slot] = at++;
                                }
                            }
                        }
                        rowsOf.add(Arrays.copyOf(rows, c));
                    }
                    NDArray flatGates = gates.reshape(nn * kk, 1);
                    NDList parts = new NDList();
                    for (int j = 0; j < ee; j++) {
                        long[] copies = rowsOf.get(j);
                        if (copies.length == 0) {
                            continue;
                        }
                        long[] tokens = new long[copies.length];
                        for (int c = 0; c < copies.length; c++) {
                            tokens[c] = copies[c] / kk;
                        }
                        NDArray tok = s.create(tokens);
                        NDArray h = x.get(new NDIndex("{}", tok)).matMul(w1.get(j));
                        if (ff != h.getShape().get(1)) {  // SwiGLU: silu(gate) * up
                            NDArray g = h.get(new NDIndex(":, :{}", ff));
                            NDArray u = h.get(new NDIndex(":, {}:", ff));
                            h = g.mul(Activation.sigmoid(g)).mul(u);
                        } else {
                            h = Activation.gelu(h);
                        }
                        NDArray y = h.matMul(w2.get(j)).mul(flatGates.get(new NDIndex("{}", s.create(copies))));
                        parts.add(y);
                    }
                    NDArray all = NDArrays.concat(parts, 0);
                    NDArray out = all.get(new NDIndex("{}", s.create(perm))).reshape(nn, kk, dd).sum(new int[] {1});
                    if (check[0] < 0) {
                        check[0] = denseDifference(s, x, w1, w2, gates, idx, out, ee, kk, ff);
                    }
                    gc.backward(out.mul(dy).sum());
                    for (NDArray t : List.of(x, router, w1, w2)) {
                        t.getGradient().subi(t.getGradient());  // zero for the next step (as t.grad = None)
                    }
                }
            };
            long warm = System.nanoTime();
            for (int reps = 0; reps < 3 || System.nanoTime() - warm < seconds / 4 * 1e9; reps++) {
                step.run();
            }
            List<Double> times = new ArrayList<>();
            long start = System.nanoTime();
            while (times.size() < 5 || System.nanoTime() - start < seconds * 1e9) {
                long t0 = System.nanoTime();
                step.run();
                times.add((System.nanoTime() - t0) / 1e6);
            }
            double[] sorted = times.stream().mapToDouble(Double::doubleValue).sorted().toArray();
            System.out.printf("{\"torch\": \"%s (DJL %s)\", \"threads\": %d, \"reps\": %d, \"layer_ms\": %.3f, "
                            + "\"layer_min_ms\": %.3f, \"layer_max_ms\": %.3f, \"check_max_abs_diff\": %.3g}%n",
                    engine.getVersion(), Engine.getDjlVersion(), threads, sorted.length, sorted[sorted.length / 2],
                    sorted[0], sorted[sorted.length - 1], check[0]);
        }
    }
}
