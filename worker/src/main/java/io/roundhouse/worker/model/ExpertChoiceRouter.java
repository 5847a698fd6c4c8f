package io.roundhouse.worker.model;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.GateMode;
import io.roundhouse.kernels.Tensor;
import java.util.Arrays;

/**
 * Expert choice (Zhou et al. 2022): scores {@code S = softmax(h)} over the experts; each expert
 * takes the {@code c = ceil(cf·K·T/E)} tokens of the global batch (T tokens over every worker)
 * with the highest score in its column, gate = the score. Every expert gets exactly c copies
 * (balanced by construction, no balancing loss, no capacity drop); a token gets between 0 and E,
 * cf·K on average. Ties go to the token first in rank order (workers hold contiguous shards of
 * the batch in rank order, so that is the global order), so W workers choose what one worker
 * holding every token chooses.
 *
 * <p>The choice needs every token's scores: each worker gathers all of them (T·E floats, through
 * host memory; the selection then runs on the host, the same on every worker, E sorts of T keys).
 *
 * <p>In a causal language model a token's experts depend on later tokens of the batch, which the
 * model cannot see when it generates: it trains that way only when asked
 * ({@code model.expertChoiceCausal}), and evaluates and generates with token choice, the top
 * {@code round(cf·K)} experts by the same scores and gates.
 */
final class ExpertChoiceRouter extends LinearRouter {
    private final ExpertExchange exchange;
    private final int k;               // mean experts per token cf·K, rounded: token choice's K
    private final double perToken;     // cf·K
    private final boolean causal;
    private final Tensor topIdx;       // [maxN, E] int every expert, by score
    private final int[] hostIdx;       // [maxN·E]
    private final float[] hostProbs;   // [maxN·E]
    private final boolean[] chosen;    // [maxN·E] (token, expert)
    private final float[] header = new float[1];
    private float[] send = new float[0];
    private long[] keys = new long[0];

    ExpertChoiceRouter(Backend be, ParamStore ps, String name, ModelSpec spec, ExpertExchange exchange, int maxN) {
        super(be, ps, name, spec, maxN, spec.experts(), 0, false);
        this.exchange = exchange;
        this.perToken = spec.capacityFactor() * spec.topK();
        this.k = (int) Math.max(1, Math.min(e, Math.round(perToken)));
        this.causal = spec.router().causal();
        topIdx = be.allocate(name + ".topIdx", DType.INT32, maxN, e);
        hostIdx = new int[maxN * e];
        hostProbs = new float[maxN * e];
        chosen = new boolean[maxN * e];
    }

    @Override
    protected void choose(RouterContext ctx) {
        // Every expert by score: the gates are the scores; expert choice keeps some slots of each row.
        be.gateForward(probs.rows(n), lse.rows(n), topIdx.rows(n), gates.rows(n), logits.rows(n), GateMode.SOFTMAX_TOPK);
        if (n > 0) {
            be.read(topIdx.rows(n), hostIdx);
        }
        if (causal && !ctx.train()) {
            for (int q = 0; q < n * e; q++) {
                if (q % e >= k) {
                    hostIdx[q] = -1;
                }
            }
        } else {
            chooseGlobally();
            for (int q = 0; q < n * e; q++) {
                int r = q / e;
                if (!chosen[r * e + hostIdx[q]]) {
                    hostIdx[q] = -1;
                }
            }
        }
        if (n > 0) {
            be.write(copies.rows(n), hostIdx);
        }
    }

    /** Marks in {@link #chosen} the (local token, expert) pairs the experts pick over every worker's tokens. */
    private void chooseGlobally() {
        header[0] = n;
        float[] sizes = exchange.allGather(header, 1).clone();
        int workers = sizes.length;
        int most = 0;
        int total = 0;
        long mine = 0;   // this worker's first token in rank order
        for (int w = 0; w < workers; w++) {
            most = Math.max(most, Math.round(sizes[w]));
            if (w < exchange.rank()) {
                mine += Math.round(sizes[w]);
            }
            total += Math.round(sizes[w]);
        }
        int len = most * e;
        if (send.length < len) {
            send = new float[len];
        }
        if (n > 0) {
            be.read(probs.rows(n), hostProbs);
        }
        System.arraycopy(hostProbs, 0, send, 0, n * e);
        float[] all = exchange.allGather(send, len);
        int capacity = (int) Math.min(total, Math.ceil(perToken * total / e));
        if (keys.length < total) {
            keys = new long[total];
        }
        Arrays.fill(chosen, 0, n * e, false);
        for (int j = 0; j < e; j++) {
            int t = 0;
            for (int w = 0; w < workers; w++) {
                int nw = Math.round(sizes[w]);
                for (int r = 0; r < nw; r++) {
                    // Scores are ≥ 0, so their bits order as they do; higher score first, then the
                    // token first in rank order (t counts the tokens in that order).
                    int bits = Float.floatToIntBits(all[w * len + r * e + j]);
                    keys[t] = ((long) (Integer.MAX_VALUE - bits) << 32) | t;
                    t++;
                }
            }
            Arrays.sort(keys, 0, total);
            for (int c = 0; c < capacity; c++) {
                long token = keys[c] & 0xFFFFFFFFL;
                if (token >= mine && token < mine + n) {
                    chosen[(int) (token - mine) * e + j] = true;
                }
            }
        }
    }

    @Override
    protected Tensor chooseBackward(Tensor dGates) {
        // dGates is 0 at the slots not chosen: the full table is the gates' own.
        be.gateBackward(dLogits.rows(n), dGates, dProbs.rows(n), dLse.rows(n), probs.rows(n), topIdx.rows(n),
                gates.rows(n), GateMode.SOFTMAX_TOPK);
        return dLogits.rows(n);
    }

    @Override
    protected int copiesPerToken() {
        return k;
    }

    @Override
    public boolean bounded() {
        return true;
    }
}
