package io.roundhouse.worker.train;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.worker.checkpoint.CheckpointStore;
import io.roundhouse.worker.data.ByteTokenizer;
import io.roundhouse.worker.data.Tokenizer;
import io.roundhouse.worker.model.LmSpec;
import io.roundhouse.worker.model.MoeTransformer;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.function.Function;

/**
 * Samples text from a language model's checkpoint, one token at a time with a key/value cache per
 * block: temperature, then nucleus (top-p) sampling from a seeded generator, so a seed fixes the
 * text. The context is the model's sequence length: when the cache is full, the last half of it is
 * encoded again from position 0 and sampling continues.
 */
public final class Generator implements AutoCloseable {
    private final Backend be;
    private final MoeTransformer model;
    private final LmSpec spec;
    private final Tokenizer tokenizer = new ByteTokenizer();
    private final Tensor token;
    private final Tensor[] cachesK;
    private final Tensor[] cachesV;
    private final float[] logits;

    /** The model of {@code checkpoint} (a step folder, or a folder of them: the latest complete one). */
    public Generator(Backend be, String checkpoint, Function<String, CheckpointStore> stores) {
        this.be = be;
        this.model = ModelCheckpoint.open(checkpoint, stores).languageModel(be, 1,
                "generate samples from a model.kind=lm checkpoint");
        this.spec = model.lmSpec();
        int kv = spec.kvHeads() * spec.headDim();
        this.cachesK = new Tensor[spec.moe().blocks()];
        this.cachesV = new Tensor[spec.moe().blocks()];
        for (int b = 0; b < cachesK.length; b++) {
            cachesK[b] = be.allocate("cache" + b + ".k", DType.FLOAT32, spec.seqLen(), kv);
            cachesV[b] = be.allocate("cache" + b + ".v", DType.FLOAT32, spec.seqLen(), kv);
        }
        this.token = be.allocate("token", DType.INT32, 1);
        this.logits = new float[spec.vocabulary()];
    }

    /**
     * {@code tokens} new tokens after {@code prompt}.
     *
     * @param temperature 0: always the most likely token
     * @param topP        sample from the smallest set of tokens whose probabilities reach topP
     */
    public byte[] generate(byte[] prompt, int tokens, double temperature, double topP, long seed) {
        if (prompt.length == 0) {
            prompt = new byte[] {'\n'};
        }
        int[] context = tokenizer.encode(prompt);
        int[] out = new int[tokens];
        SplittableRandom rnd = new SplittableRandom(seed);
        int t = spec.seqLen();
        // The prompt's last seqLen − 1 tokens fill the cache.
        int[] window = Arrays.copyOfRange(context, Math.max(0, context.length - (t - 1)), context.length);
        int pos = prefill(window);
        for (int i = 0; i < tokens; i++) {
            int next = sample(temperature, topP, rnd);
            out[i] = next;
            if (pos == t) {
                // Full: keep the last half of what was seen (prompt and samples) and encode it again.
                int[] seen = new int[context.length + i + 1];
                System.arraycopy(context, 0, seen, 0, context.length);
                System.arraycopy(out, 0, seen, context.length, i + 1);
                pos = prefill(Arrays.copyOfRange(seen, seen.length - t / 2, seen.length));
            } else {
                step(next, pos++);
            }
        }
        return tokenizer.decode(out, 0, tokens);
    }

    /** Encodes {@code ids} from position 0; the logits after the last one are ready. @return the next position */
    private int prefill(int[] ids) {
        for (int p = 0; p < ids.length; p++) {
            step(ids[p], p);
        }
        return ids.length;
    }

    private void step(int id, int pos) {
        be.write(token, new int[] {id});
        be.read(model.decode(token, pos, cachesK, cachesV), logits);
    }

    private int sample(double temperature, double topP, SplittableRandom rnd) {
        int v = logits.length;
        if (temperature <= 0) {
            int best = 0;
            for (int j = 1; j < v; j++) {
                if (logits[j] > logits[best]) {
                    best = j;
                }
            }
            return best;
        }
        double max = Double.NEGATIVE_INFINITY;
        for (float l : logits) {
            max = Math.max(max, l);
        }
        double[] p = new double[v];
        double sum = 0;
        for (int j = 0; j < v; j++) {
            p[j] = Math.exp((logits[j] - max) / temperature);
            sum += p[j];
        }
        Integer[] order = new Integer[v];
        for (int j = 0; j < v; j++) {
            order[j] = j;
            p[j] /= sum;
        }
        Arrays.sort(order, (a, b) -> p[b] != p[a] ? Double.compare(p[b], p[a]) : Integer.compare(a, b));
        double kept = 0;
        int n = 0;
        while (n < v && (n == 0 || kept < topP)) {
            kept += p[order[n++]];
        }
        double u = rnd.nextDouble() * kept;
        for (int j = 0; j < n; j++) {
            u -= p[order[j]];
            if (u <= 0) {
                return order[j];
            }
        }
        return order[n - 1];
    }

    public LmSpec spec() {
        return spec;
    }

    @Override
    public void close() {
        be.close();
    }
}
