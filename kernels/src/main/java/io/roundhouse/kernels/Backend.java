package io.roundhouse.kernels;

import io.roundhouse.kernels.cpu.CpuBackend;
import java.util.List;

/**
 * Where tensors live and how ops run on them. The CPU backend ({@link CpuBackend}) is the reference;
 * a CUDA backend implements the same ops with the same signatures and is tested against it.
 *
 * <p>Dimension legend used in every shape comment: N tokens, D model width, I/O a linear layer's
 * input/output width, F expert hidden width, F1 pre-activation width ({@link Activation#preWidth}),
 * E experts, K experts per token (top-k), M kept token copies in expert order, C classes; attention: B
 * sequences, T tokens each (Tq queries, Tk keys), H query heads and Hkv key/value heads of dh; images:
 * G images (groups) of c channels of S×S pixels, cut into P = (S/p)² patches of p×p.
 *
 * <p>Conventions: ops come in {@code xxxForward}/{@code xxxBackward} pairs. Forward writes every
 * output, including what backward needs ("saved" tensors). Backward <b>assigns</b> activation
 * gradients ({@code dX}) and <b>accumulates</b> ({@code +=}) parameter gradients ({@code dW}), so a
 * parameter used twice sums its gradient. A {@code null} optional argument means "absent"
 * (e.g. no bias).
 */
public interface Backend extends AutoCloseable {

    /** A short name for logs: "cpu", "cuda:0". */
    String name();

    // ---- memory -------------------------------------------------------------------------------

    /** A new zero-filled tensor. Allocate per lifetime (setup, first step), never inside a step. */
    Tensor allocate(String name, DType dtype, int... shape);

    /** Copies {@code src[0, t.size())} into {@code t}. */
    default void write(Tensor t, float[] src) {
        write(t, src, 0);
    }

    /** Copies {@code src[off, off + t.size())} into {@code t}. */
    void write(Tensor t, float[] src, int off);

    void write(Tensor t, int[] src);

    /** Copies {@code t} into {@code dst[0, t.size())}. */
    default void read(Tensor t, float[] dst) {
        read(t, dst, 0);
    }

    /** Copies {@code t} into {@code dst[off, off + t.size())}. */
    void read(Tensor t, float[] dst, int off);

    void read(Tensor t, int[] dst);

    /**
     * A host buffer of {@code floats} floats for staging tensors to and from the network (page-locked
     * on a GPU). Allocate per lifetime; freed when the backend closes.
     */
    HostBuffer allocateHost(String name, int floats);

    /** Copies FLOAT32 {@code t} into {@code dst[off, off + t.size())}. */
    void read(Tensor t, HostBuffer dst, int off);

    /** Copies {@code src[off, off + t.size())} into FLOAT32 {@code t}. */
    void write(Tensor t, HostBuffer src, int off);

    /**
     * Copies {@code src[off, off + rows·t.rowSize())} into rows [row0, row0 + rows) of FLOAT32
     * {@code t}: a part of a tensor filled as its rows arrive (a backend may do it without making a view).
     */
    default void writeRows(Tensor t, int row0, int rows, HostBuffer src, int off) {
        write(t.rows(row0, rows), src, off);
    }

    /** Copies rows [row0, row0 + rows) of FLOAT32 {@code t} into {@code dst[off, off + rows·t.rowSize())}. */
    default void readRows(Tensor t, int row0, int rows, HostBuffer dst, int off) {
        read(t.rows(row0, rows), dst, off);
    }

    /**
     * Copies each {@code ts.get(i)} into {@code dst} from {@code offsets[i]}: on a GPU the copies
     * queue and the host waits once, not once per tensor (the gradient all-reduce's many parameters).
     */
    default void read(List<Tensor> ts, HostBuffer dst, int[] offsets) {
        for (int i = 0; i < ts.size(); i++) {
            read(ts.get(i), dst, offsets[i]);
        }
    }

    /** Copies {@code src} from {@code offsets[i]} into each {@code ts.get(i)}, waiting once. */
    default void write(List<Tensor> ts, HostBuffer src, int[] offsets) {
        for (int i = 0; i < ts.size(); i++) {
            write(ts.get(i), src, offsets[i]);
        }
    }

    void fill(Tensor t, float value);

    /** {@code dst = src} (same size). */
    void copy(Tensor dst, Tensor src);

    /** {@code y += alpha · x} (same size). */
    void axpy(Tensor y, float alpha, Tensor x);

    /** {@code t *= alpha}. */
    void scale(Tensor t, float alpha);

    /** {@code Σ t²}, accumulated in double. */
    double sumSquares(Tensor t);

    /**
     * {@code Σ_i sumSquares(ts.get(i))}, added in list order; on a GPU with one wait for all of them
     * (a gradient norm over every parameter).
     */
    default double sumSquares(List<Tensor> ts) {
        double s = 0;
        for (int i = 0; i < ts.size(); i++) {  // every step: no iterator
            s += sumSquares(ts.get(i));
        }
        return s;
    }

    // ---- dense layers -------------------------------------------------------------------------

    /**
     * {@code y = x·w + b}. y[N,O], x[N,I], w[I,O], b[O] or null.
     */
    default void linearForward(Tensor y, Tensor x, Tensor w, Tensor b) {
        linearForward(y, x, w, b, Precision.FP32);
    }

    /** {@link #linearForward(Tensor, Tensor, Tensor, Tensor)} with the GEMM at precision {@code p}. */
    void linearForward(Tensor y, Tensor x, Tensor w, Tensor b, Precision p);

    /**
     * dx[N,I] = dy·wᵀ (assigned; skipped if dx is null), dw[I,O] += xᵀ·dy, db[O] += Σ_n dy (if not
     * null). dy[N,O], x[N,I], w[I,O].
     */
    default void linearBackward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w) {
        linearBackward(dx, dw, db, dy, x, w, Precision.FP32);
    }

    /**
     * {@link #linearBackward(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)} with both GEMMs at
     * precision {@code p} (db sums dy in fp32).
     */
    void linearBackward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w, Precision p);

    /**
     * {@code y = x·wᵀ} in fp32: a projection by a table of O rows (a language model's output tied to
     * its token embedding). y[N,O], x[N,I], w[O,I].
     */
    void linearTransposedForward(Tensor y, Tensor x, Tensor w);

    /**
     * Backward of {@link #linearTransposedForward}: dx[N,I] = dy·w (assigned), dw[O,I] += dyᵀ·x.
     * dy[N,O], x[N,I], w[O,I]. Both are {@link #linearForward} and {@link #linearBackward} with the
     * roles of w's dimensions swapped.
     */
    default void linearTransposedBackward(Tensor dx, Tensor dw, Tensor dy, Tensor x, Tensor w) {
        Check.linearTransposed(dy, x, w);
        linearForward(dx, dy, w, null);             // dy[N,O]·w[O,I]
        linearBackward(null, dw, null, x, dy, w);   // dw[O,I] += dyᵀ·x (linearBackward's xᵀ·dy, x and dy swapped)
    }

    /** h[N,F] = act(a[N,F1]). */
    void activationForward(Tensor h, Tensor a, Activation act);

    /** da[N,F1] = dh[N,F] · act'(a[N,F1]). */
    void activationBackward(Tensor da, Tensor dh, Tensor a, Activation act);

    /**
     * Grouped expert FFN over variable-size groups of rows: rows {@code [offsets[e], offsets[e+1])}
     * of x belong to expert e, and a group may be empty. For each expert:
     * {@code a = x·w1[e] + b1[e]; h = act(a); y = h·w2[e] + b2[e]}.
     *
     * <p>y[M,D] out; a[M,F1], h[M,F] saved; x[M,D]; w1[E,D,F1], b1[E,F1], w2[E,F,D], b2[E,D];
     * offsets int[E+1] on the host, offsets[E] = M. The groups may start past row 0 (offsets[0] > 0):
     * the rows before it are left as they are (a layer computes one expert at a time as its rows
     * arrive, each with the bits it has in a call over every group); likewise in
     * {@link #expertFfnBackwardData}.
     */
    default void expertFfnForward(Tensor y, Tensor a, Tensor h, Tensor x, Tensor w1, Tensor b1, Tensor w2,
                                  Tensor b2, int[] offsets, Activation act) {
        expertFfnForward(y, a, h, x, w1, b1, w2, b2, offsets, act, Precision.FP32);
    }

    /** The grouped expert FFN with its GEMMs at precision {@code p}. */
    void expertFfnForward(Tensor y, Tensor a, Tensor h, Tensor x, Tensor w1, Tensor b1, Tensor w2,
                          Tensor b2, int[] offsets, Activation act, Precision p);

    /**
     * Backward of {@link #expertFfnForward}. dx[M,D] assigned; dw1, db1, dw2, db2 accumulated.
     * scratchDh[M,F] and scratchDa[M,F1] are caller-owned workspace (allocated once by the layer).
     */
    default void expertFfnBackward(Tensor dx, Tensor dw1, Tensor db1, Tensor dw2, Tensor db2, Tensor dy,
                                   Tensor x, Tensor a, Tensor h, Tensor w1, Tensor w2, int[] offsets,
                                   Activation act, Tensor scratchDh, Tensor scratchDa) {
        expertFfnBackward(dx, dw1, db1, dw2, db2, dy, x, a, h, w1, w2, offsets, act, scratchDh, scratchDa,
                Precision.FP32);
    }

    /**
     * The expert FFN's backward with its GEMMs at {@code p} (the bias gradients sum in fp32): its
     * input half, then its weight half. A caller that overlaps sends dx on its way between the two.
     */
    default void expertFfnBackward(Tensor dx, Tensor dw1, Tensor db1, Tensor dw2, Tensor db2, Tensor dy,
                                   Tensor x, Tensor a, Tensor h, Tensor w1, Tensor w2, int[] offsets,
                                   Activation act, Tensor scratchDh, Tensor scratchDa, Precision p) {
        expertFfnBackwardData(dx, dy, a, w1, w2, offsets, act, scratchDh, scratchDa, p);
        expertFfnBackwardWeights(dw1, db1, dw2, db2, dy, x, h, offsets, scratchDa, p);
    }

    /**
     * The input half of {@link #expertFfnBackward}: per expert {@code dh = dy·w2ᵀ} into scratchDh,
     * {@code da = act'(a)·dh} into scratchDa, dx[M,D] = {@code da·w1ᵀ} assigned.
     */
    void expertFfnBackwardData(Tensor dx, Tensor dy, Tensor a, Tensor w1, Tensor w2, int[] offsets,
                               Activation act, Tensor scratchDh, Tensor scratchDa, Precision p);

    /**
     * The weight half of {@link #expertFfnBackward}, after {@link #expertFfnBackwardData} left da in
     * scratchDa: per expert {@code dw2 += hᵀ·dy}, {@code db2 += Σ dy}, {@code dw1 += xᵀ·da},
     * {@code db1 += Σ da} (db1, db2 may be null). Independent of dx, so it may run while dx travels.
     */
    void expertFfnBackwardWeights(Tensor dw1, Tensor db1, Tensor dw2, Tensor db2, Tensor dy, Tensor x, Tensor h,
                                  int[] offsets, Tensor scratchDa, Precision p);

    /**
     * y = norm(x)·gamma (+ beta). LayerNorm when beta is non-null ({@code (x−μ)/√(var+eps)}),
     * RMSNorm when beta is null ({@code x/√(mean(x²)+eps)}). y[N,D], mean[N] saved (unused by
     * RMSNorm but written as 0), rstd[N] saved, x[N,D], gamma[D], beta[D] or null.
     */
    void normForward(Tensor y, Tensor mean, Tensor rstd, Tensor x, Tensor gamma, Tensor beta, float eps);

    /** dx[N,D] assigned; dgamma[D], dbeta[D] (LayerNorm only) accumulated. */
    void normBackward(Tensor dx, Tensor dgamma, Tensor dbeta, Tensor dy, Tensor x, Tensor mean,
                      Tensor rstd, Tensor gamma);

    /**
     * Inverted dropout: {@code y = x · keep / (1−p)}, where element i of this tensor keeps when the
     * counter-based uniform {@link Philox#uniform(long, long, long)}{@code (seed, stream,
     * firstElement + i) >= p}. The mask is never stored: backward recomputes it from the same
     * (seed, stream, firstElement), so every backend and every worker reproduces it exactly; a
     * worker holding rows [r, r+n) of a global batch passes {@code firstElement = r·rowSize} and
     * gets the mask one worker with the whole batch would. p in [0, 1).
     */
    void dropoutForward(Tensor y, Tensor x, float p, long seed, long stream, long firstElement);

    /** dx = dy · keep / (1−p) with the mask of the matching forward. */
    void dropoutBackward(Tensor dx, Tensor dy, float p, long seed, long stream, long firstElement);

    /**
     * Dropout with a rate per row ({@code rates[n]}, each in [0, 1)): element i of row r keeps when
     * the same Philox uniform as {@link #dropoutForward} is {@code >= rates[r]}, scaled by
     * {@code 1/(1−rates[r])}. With every rate equal to p it is {@code dropoutForward(p)} bit for bit.
     * Self-Tuning Networks give every example its own perturbed rate.
     */
    void dropoutRowsForward(Tensor y, Tensor x, Tensor rates, long seed, long stream, long firstElement);

    /** dx = dy · keep / (1−rates[r]) with the mask of the matching forward. */
    void dropoutRowsBackward(Tensor dx, Tensor dy, Tensor rates, long seed, long stream, long firstElement);

    /**
     * Multiplicative jitter (the Switch router's input noise) with an amplitude per row:
     * {@code y = x · (1 + a[r]·(2u − 1))}, u the Philox uniform of the element as in
     * {@link #dropoutForward}. The map is linear in x, so backward is this op applied to dy with the
     * same arguments.
     */
    void jitter(Tensor y, Tensor x, Tensor amplitude, long seed, long stream, long firstElement);

    // ---- transformer --------------------------------------------------------------------------

    /**
     * Rotary position embedding (RoPE). x[N, H·dh] holds H heads of {@code headDim} per row; row r is
     * the token at position {@code firstPos + r % period}. In each head, the pair of elements
     * {@code (i, i + dh/2)}, i in [0, dh/2), rotates by the angle {@code pos·theta^(−2i/dh)} (the
     * "rotate half" layout of GPT-NeoX, Llama and Mixtral): {@code y_i = x_i·cos − x_{i+dh/2}·sin,
     * y_{i+dh/2} = x_{i+dh/2}·cos + x_i·sin}. {@code inverse} rotates by minus the angle, which is the
     * backward (a rotation's adjoint is its inverse). y may be x.
     */
    void rope(Tensor y, Tensor x, int headDim, int period, int firstPos, float theta, boolean inverse);

    /**
     * Causal scaled-dot-product attention over {@code batch} = B sequences, by sequence and head. q[B·Tq, H·dh]; k, v[B·Tk, Hkv·dh],
     * Hkv dividing H (grouped-query attention: query head h reads key/value head
     * {@code h / (H/Hkv)}); query i of a sequence sits at position {@code Tk − Tq + i} and attends
     * keys [0, Tk − Tq + i] (Tq = Tk in training; Tq = 1 decodes one token against a cache).
     * out[B·Tq, H·dh] = softmax(scale·q·kᵀ, causal)·v; lse[B·Tq, H] saved (each row's log-sum-exp,
     * all backward needs to rebuild the probabilities: no T×T tensor is kept).
     *
     * <p>Attention dropout when {@code rates} (one rate per query row, [B·Tq], each in [0, 1)) is not
     * null: probability (b, h, i, j) is kept when the Philox uniform of element
     * {@code ((firstSequence + b)·H + h)·Tq·Tk + i·Tk + j} is {@code >= rates[b·Tq + i]}, and scaled
     * by {@code 1/(1 − rates[b·Tq + i])}, so a worker holding sequences [s, s + B) of a global batch
     * draws the masks one worker would (and a Self-Tuning Network can give every token its own rate).
     */
    void attentionForward(Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v, int batch, int heads, int kvHeads,
                          float scale, Tensor rates, long seed, long stream, long firstSequence);

    /**
     * Backward of {@link #attentionForward} with the same arguments: dq[B·Tq, H·dh], dk, dv[B·Tk,
     * Hkv·dh] assigned, from dOut[B·Tq, H·dh] and the forward's out and lse.
     */
    void attentionBackward(Tensor dq, Tensor dk, Tensor dv, Tensor dOut, Tensor out, Tensor lse, Tensor q, Tensor k,
                           Tensor v, int batch, int heads, int kvHeads, float scale, Tensor rates, long seed,
                           long stream, long firstSequence);

    /** The attention output gate: {@code y = x ⊙ σ(g)}, element by element (x, g, y of one size). */
    void sigmoidGateForward(Tensor y, Tensor x, Tensor g);

    /** {@code dx = dy ⊙ σ(g)} and {@code dg = dy ⊙ x ⊙ σ(g)·(1 − σ(g))}, both assigned. */
    void sigmoidGateBackward(Tensor dx, Tensor dg, Tensor dy, Tensor x, Tensor g);

    // ---- images (patch models) ----------------------------------------------------------------

    /**
     * Cuts images into patches: x[G, c·S·S] (each image channel-major, rows of pixels) into
     * xp[G·P, c·p·p], patch (py, px) of image g at row {@code g·P + py·(S/p) + px}, its columns
     * channel-major then rows of the patch: {@code xp[g·P + py·(S/p) + px, (ch·p + dy)·p + dx] =
     * x[g, ch·S·S + (py·p + dy)·S + px·p + dx]}. p divides S. With a linear layer after it, this is
     * a convolution of kernel p and stride p (a ViT's or a Mixer's patch embedding).
     */
    void patchesForward(Tensor xp, Tensor x, int channels, int side, int patch);

    /** Backward of {@link #patchesForward} (a permutation, so its inverse): dx[G, c·S·S] assigned from dxp. */
    void patchesBackward(Tensor dx, Tensor dxp, int channels, int side, int patch);

    /**
     * Transposes each of {@code groups} blocks: x[G·A, B] into y[G·B, A], {@code y[g·B + b, a] =
     * x[g·A + a, b]}. With A = P positions and B = D channels, a linear layer on y's rows mixes
     * across an image's positions (a Mixer's token mixing), and the transpose back returns the
     * rows to positions. Its own adjoint with A and B swapped: the backward of y = T(x) is
     * {@code transposeGroups(dx, dy, groups)}. y is not x.
     */
    void transposeGroups(Tensor y, Tensor x, int groups);

    /** y[G, D] = the mean of each group's rows of x[G·P, D] (P = x's rows / G), summed in row order. */
    void meanGroupsForward(Tensor y, Tensor x, int groups);

    /** dx[G·P, D] = dy[g]/P for every row of group g (assigned). */
    void meanGroupsBackward(Tensor dx, Tensor dy, int groups);

    // ---- element-wise (STN responses, per-example coefficients) -------------------------------

    /** {@code y = a ⊙ b}; b has a's shape, or is a row vector {@code [cols]} broadcast over a's rows. */
    void multiply(Tensor y, Tensor a, Tensor b);

    /** {@code y += a ⊙ b}, b as in {@link #multiply}. */
    void multiplyAdd(Tensor y, Tensor a, Tensor b);

    /** {@code acc[c] += Σ_r a[r,c]·b[r,c]} (a and b of one shape {@code [n, cols]}). */
    void sumRowProducts(Tensor acc, Tensor a, Tensor b);

    /** {@code t[r, :] *= s[r]}. */
    void scaleRows(Tensor t, Tensor s);

    // ---- routing ------------------------------------------------------------------------------

    /**
     * Top-k gating. probs[N,E] = softmax(logits) saved; lse[N] = logsumexp(logits) saved;
     * topIdx[N,K] int, the K largest logits in descending order (ties: lower index first);
     * gates[N,K] per {@code mode}.
     */
    void gateForward(Tensor probs, Tensor lse, Tensor topIdx, Tensor gates, Tensor logits, GateMode mode);

    /**
     * dLogits[N,E] (assigned) from dGates[N,K] and, when non-null, dProbs[N,E] (gradient with
     * respect to the full softmax, e.g. from the load-balancing loss) and dLse[N] (e.g. from the
     * z-loss).
     */
    void gateBackward(Tensor dLogits, Tensor dGates, Tensor dProbs, Tensor dLse, Tensor probs,
                      Tensor topIdx, Tensor gates, GateMode mode);

    /**
     * Sigmoid top-k gating (DeepSeek-V3): scores s = σ(logits); topIdx[N,K] the K largest
     * {@code s_j + bias_j} in descending order (ties: lower index first; bias[E] only selects, it
     * never weights); gates[N,K] = s over the chosen, normalised to sum 1. Also saved for the
     * auxiliary losses: probs[N,E] = s / Σ_j s_j (the scores normalised over every expert: the
     * load-balancing loss's P) and lse[N] = logsumexp(logits) (the z-loss's).
     */
    void sigmoidTopKForward(Tensor probs, Tensor lse, Tensor topIdx, Tensor gates, Tensor logits, Tensor bias);

    /**
     * Backward of {@link #sigmoidTopKForward}: dLogits[N,E] (assigned) from dGates[N,K] and, when
     * non-null, dProbs[N,E] and dLse[N]; needs the forward's logits, lse, topIdx and gates.
     */
    void sigmoidTopKBackward(Tensor dLogits, Tensor dGates, Tensor dProbs, Tensor dLse, Tensor logits, Tensor lse,
                             Tensor topIdx, Tensor gates);

    /**
     * {@code copies[n,s] = gates[n,s] ≥ threshold ? topIdx[n,s] : −1}: the slots whose gate falls
     * below the threshold become empty (a dense-to-sparse router's sparsification). copies, topIdx
     * int [N,K], gates [N,K].
     */
    void selectAtLeast(Tensor copies, Tensor topIdx, Tensor gates, float threshold);

    /**
     * Capacity limit and expert ordering for a table of token copies: slot (n,s) of topIdx[N,S]
     * holds the expert of one copy of token n, or −1 for none (a router may give tokens different
     * numbers of copies, e.g. expert choice or a threshold). Copies are admitted in priority
     * order — every token's slot 0 (tokens in order), then every token's slot 1, and so on — while
     * their expert has fewer than {@code capacity} copies; {@code capacity <= 0} admits all
     * (dropless). Admitted copies are laid out grouped by expert, in admission order within a group.
     *
     * <p>rowToken[N·S] int: rows [0, M) get the source token of each kept copy; copyRow[N,S] int:
     * the row of copy (n,s), or −1 if it was dropped or the slot is empty; offsets int[E+1] (host,
     * out): group boundaries; selected int[E] (host, out): copies that chose each expert before the
     * capacity limit.
     *
     * @return M, the number of kept copies
     */
    int dispatchPlan(Tensor rowToken, Tensor copyRow, int[] offsets, int[] selected, Tensor topIdx,
                     int numExperts, int capacity);

    /** Gather into expert order: xp[r] = x[rowToken[r]] for r in [0, M). xp[M,D], x[N,D]. */
    void permuteForward(Tensor xp, Tensor x, Tensor rowToken, int m);

    /** Adjoint of permute (a scatter-add): dx[N,D] = 0, then dx[rowToken[r]] += dxp[r]. */
    void permuteBackward(Tensor dx, Tensor dxp, Tensor rowToken, int m);

    /**
     * Un-permute and combine: y[n] = Σ_k gates[n,k] · yp[copyRow[n,k]] over kept copies (y
     * assigned; a token whose copies were all dropped gets 0). gates null means weight 1, which
     * makes this the adjoint of {@link #permuteForward}. y[N,D], yp[M,D], copyRow[N,K], gates[N,K].
     */
    void unpermuteForward(Tensor y, Tensor yp, Tensor copyRow, Tensor gates);

    /**
     * dyp[M,D] = gates[n,k]·dy[n] at row copyRow[n,k] (assigned; rows of no copy untouched), and
     * if dGates is non-null dGates[n,k] = ⟨dy[n], yp[copyRow[n,k]]⟩ (0 for dropped copies).
     */
    void unpermuteBackward(Tensor dyp, Tensor dGates, Tensor dy, Tensor yp, Tensor copyRow, Tensor gates);

    /** Column sums of probs[N,E] into {@code probSums[E]} (host): the router-loss statistic P_e·N. */
    void routerStats(Tensor probs, float[] probSums);

    /**
     * Σ over the rows of probs[N,E] of each row's entropy {@code −Σ_j p_j·ln p_j} (0·ln 0 = 0), in
     * nats: how spread the router's distributions are (a metric; no backward).
     */
    double routerEntropy(Tensor probs);

    /**
     * Router auxiliary losses from statistics that may cover more tokens than this worker holds
     * (summed over workers, so W workers give what one worker with all tokens gives).
     * Load balancing (Switch): {@code alpha·E·Σ_e f_e·P_e} with {@code f_e = selected[e]/(T·K)}
     * (a constant) and {@code P_e = probSums[e]/T}, T = totalTokens. Z-loss (ST-MoE): this
     * worker's share {@code beta·Σ_{n local} lse[n]²/T}. Writes {loadBalance, zLossShare} into
     * {@code out} (two floats) and returns it.
     */
    float[] routerLossForward(Tensor lse, int[] selected, float[] probSums, int totalTokens, int k, float alpha,
                              float beta, float[] out);

    /**
     * dProbs[N,E] = dLoss·alpha·E·f_e/T and dLse[N] = dLoss·2·beta·lse/T (assigned), the gradients
     * of {@link #routerLossForward} with respect to this worker's probabilities and lse.
     */
    void routerLossBackward(Tensor dProbs, Tensor dLse, Tensor lse, int[] selected, int totalTokens, int k,
                            float alpha, float beta, float dLoss);

    // ---- the noisy top-k router (Shazeer et al. 2017) ----

    /**
     * The noisy logits: {@code noisy = clean + ε·softplus(raw)}, element by element, where ε of
     * element i of this tensor is the standard normal {@link Philox#normal}{@code (seed, stream,
     * firstElement + i)} (i = n·E + e). ε is never stored: backward draws it again from the same
     * (seed, stream, firstElement), and a worker holding rows [r, r+n) of a global batch passes
     * {@code firstElement = r·E}. softplus(x) = ln(1 + eˣ), computed stably. noisy, clean, raw [N,E].
     */
    void noisyLogitsForward(Tensor noisy, Tensor clean, Tensor raw, long seed, long stream, long firstElement);

    /**
     * Backward of {@link #noisyLogitsForward} with its arguments: dRaw[N,E] = dNoisy·ε·sigmoid(raw)
     * (assigned). The clean logits' gradient is dNoisy itself, which the caller uses as it is.
     */
    void noisyLogitsBackward(Tensor dRaw, Tensor dNoisy, Tensor raw, long seed, long stream, long firstElement);

    /**
     * The smooth load estimate (t2t's {@code _prob_in_top_k}): load[n,e] = the probability that
     * expert e is in row n's top-k under a fresh draw of its own noise, the others' noisy values
     * fixed: {@code Φ((clean_e − thr)/softplus(raw_e))}, Φ the standard normal CDF. Experts rank by
     * noisy value, ties to the lower index (as {@link #gateForward}); for e in the top-k (rank < k)
     * thr is the noisy value at rank k (the (k+1)-th largest, which e must stay above), for the
     * others the one at rank k − 1 (the k-th largest, which e must pass). With k ≥ E every expert
     * is always in: load = 1. load, clean, noisy, raw [N,E]; k ≥ 1.
     */
    void noisyTopKLoadForward(Tensor load, Tensor clean, Tensor noisy, Tensor raw, int k);

    /**
     * Backward of {@link #noisyTopKLoadForward}: <b>accumulates</b> into dClean, dNoisy, dRaw
     * [N,E] the gradient of {@code Σ dLoad·load}, the ranking held fixed (which expert is at rank k
     * and k − 1) while the gradient flows into the threshold's noisy value. With z = (clean_e −
     * thr)/σ_e and φ the normal density: dClean[e] += dLoad·φ(z)/σ_e, dNoisy[threshold expert] −=
     * dLoad·φ(z)/σ_e, dRaw[e] −= dLoad·φ(z)·z/σ_e·sigmoid(raw_e). k ≥ E adds nothing.
     */
    void noisyTopKLoadBackward(Tensor dClean, Tensor dNoisy, Tensor dRaw, Tensor dLoad, Tensor clean, Tensor noisy,
                               Tensor raw, int k);

    /**
     * The importance statistic: {@code sums[e]} (host, E = sums.length, assigned) = Σ of
     * gates[n,s] over the slots with topIdx[n,s] == e; a negative index (a slot with no copy) is
     * skipped, one ≥ E is an error. topIdx int[N,K], gates[N,K].
     */
    void expertGateSums(Tensor topIdx, Tensor gates, float[] sums);

    /**
     * The adjoint of {@link #expertGateSums}: dGates[n,s] += perExpert[topIdx[n,s]] (host array of
     * E) for every slot with an index ≥ 0. dGates[N,K], topIdx int[N,K].
     */
    void addExpertValues(Tensor dGates, Tensor topIdx, float[] perExpert);

    // ---- loss and optimizer -------------------------------------------------------------------

    /**
     * Softmax cross-entropy. losses[N] = −log softmax(logits)[label]; probs[N,C] saved;
     * labels[N] int in [0, C).
     */
    void crossEntropyForward(Tensor losses, Tensor probs, Tensor logits, Tensor labels);

    /** dLogits[N,C] = scale · (probs − onehot(labels)) (assigned). */
    void crossEntropyBackward(Tensor dLogits, Tensor probs, Tensor labels, float scale);

    /**
     * One AdamW step with decoupled weight decay, bias-corrected for step {@code t ≥ 1}:
     * {@code m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²;
     * w −= lr·(m̂/(√v̂ + eps) + wd·w)}.
     */
    void adamWStep(Tensor w, Tensor g, Tensor m, Tensor v, float lr, float beta1, float beta2,
                   float eps, float weightDecay, int t);

    @Override
    void close();
}
