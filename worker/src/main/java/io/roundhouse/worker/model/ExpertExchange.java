package io.roundhouse.worker.model;

import io.roundhouse.kernels.Tensor;

/**
 * Moves token rows between the workers that route them and the workers that own their experts:
 * steps 3 and 5 of the MoE layer (see {@link MoeLayer}). Rows arrive at {@link #dispatch} grouped
 * by global expert; what comes back from it is grouped by the experts this worker hosts.
 *
 * <p>Backward mirrors forward: the backward of dispatch is a combine, the backward of combine a
 * dispatch, with send and receive sizes swapped. An implementation owns the buffers it returns;
 * each of the four methods returns a tensor the next call to the same method may overwrite.
 *
 * <p>{@link LocalExchange} is the single-process case (this worker hosts every expert);
 * {@link io.roundhouse.worker.parallel.AllToAllExchange} moves the rows between W workers with the
 * Aeron all-to-all.
 */
public interface ExpertExchange {

    /** This worker's rank among the workers (0 for one). */
    int rank();

    /** Number of experts hosted here. */
    int localExperts();

    /** Global id of the first hosted expert (hosted experts are contiguous). */
    int firstLocalExpert();

    /**
     * The most rows {@link #dispatch} can return when every worker dispatches at most
     * {@code maxRowsOut} rows: sizes the expert-side buffers.
     */
    int maxRowsIn(int maxRowsOut);

    /**
     * Sums {@code stats} over the workers in place (the router-loss statistics: choices and
     * probability sums per expert, and the token count). One worker: nothing to do. Called after
     * the capacity plan and before {@link #dispatch}, with that dispatch's group boundaries, so an
     * implementation may share the per-expert row counts in the same message and spare the
     * dispatch its own count exchange.
     *
     * @param offsets the global group boundaries the next {@link #dispatch} gets, int[E+1]
     */
    void sumRouterStats(float[] stats, int[] offsets);

    /**
     * Pre-gating: {@link #sumRouterStats} for this layer (or, with {@code stats} null, only the
     * next) and for the next MoE layer, whose routing is already known, in one round; the next
     * layer's exchange {@code next} then dispatches without a round of its own.
     */
    void sumRouterStats(float[] stats, int[] offsets, float[] nextStats, int[] nextOffsets, ExpertExchange next);

    /**
     * Every worker's {@code send[0, len)}, in rank order ({@code len} the same on every worker): a
     * router's statistics that are not sums (expert choice gathers every token's scores). Returns
     * [W·len], valid until the next call; one worker gets {@code send} back.
     */
    float[] allGather(float[] send, int len);

    /**
     * @param xp           rows grouped by global expert, xp[M,D]
     * @param offsets      global group boundaries, int[E+1]
     * @param localOffsets out: group boundaries of the returned rows, int[localExperts+1]
     * @return the rows for the hosted experts, [M_local, D]
     */
    Tensor dispatch(Tensor xp, int[] offsets, int[] localOffsets);

    /** Sends expert outputs yr[M_local,D] back; returns yp[M,D] in the layout {@code xp} had. */
    default Tensor combine(Tensor yr, int[] localOffsets, int[] offsets) {
        startCombine(yr, localOffsets, offsets);
        return finish();
    }

    /** Backward of {@link #dispatch}: dxr[M_local,D] → dxp[M,D]. */
    default Tensor dispatchBackward(Tensor dxr, int[] localOffsets, int[] offsets) {
        startDispatchBackward(dxr, localOffsets, offsets);
        return finish();
    }

    /** Backward of {@link #combine}: dyp[M,D] → dyr[M_local,D]. */
    default Tensor combineBackward(Tensor dyp, int[] offsets, int[] localOffsets) {
        startCombineBackward(dyp, offsets, localOffsets);
        return finish();
    }

    /**
     * Overlap: starts {@link #combine} and returns once the rows are on their way, so the caller can
     * compute what does not depend on the result (the MoE layer's shared experts) while they
     * travel; {@link #finish} then returns what combine would have. Until then the caller makes no
     * other call on this exchange, runs no other collective, and leaves {@code yr} as it is. The
     * bits are the blocking call's.
     */
    void startCombine(Tensor yr, int[] localOffsets, int[] offsets);

    /** Overlap: starts {@link #dispatchBackward} (the experts' weight gradients are computed meanwhile); see {@link #startCombine}. */
    void startDispatchBackward(Tensor dxr, int[] localOffsets, int[] offsets);

    /** Overlap: starts {@link #combineBackward} (the router's and shared experts' backward run meanwhile); see {@link #startCombine}. */
    void startCombineBackward(Tensor dyp, int[] offsets, int[] localOffsets);

    /** Waits for the exchange a {@code start…} call began and returns its result. */
    Tensor finish();

    /**
     * Pipelining ({@code comms.overlap} on, more than one hosted expert): whether
     * {@link #startDispatch} and {@link #awaitExpert} are offered, so that the layer computes each
     * hosted expert as soon as every worker's rows for it are in, while the rows of the next travel.
     */
    default boolean pipelines() {
        return false;
    }

    /**
     * Pipelining: starts {@link #dispatch} (filling {@code localOffsets}) and returns the tensor the
     * rows land in, [M_local, D]; hosted expert k's rows are in it once {@link #awaitExpert}(k)
     * returns, and {@link #finish} completes the exchange (returning the same tensor). The bits are
     * the blocking call's.
     */
    default Tensor startDispatch(Tensor xp, int[] offsets, int[] localOffsets) {
        throw new UnsupportedOperationException(getClass().getSimpleName() + " does not pipeline");
    }

    /**
     * Pipelining, during a started exchange towards the experts ({@link #startDispatch} or
     * {@link #startCombineBackward}): waits until every worker's rows for hosted expert k have
     * arrived and puts them in place; k = 0, 1, … in order.
     *
     * @return the started exchange's destination (the tensor {@link #finish} will return)
     */
    default Tensor awaitExpert(int k) {
        throw new UnsupportedOperationException(getClass().getSimpleName() + " does not pipeline");
    }

    /**
     * Pipelining, forward: whether the combine can leave expert by expert: after a
     * {@link #startDispatch}, {@link #releaseExpert}(k) once hosted expert k's results are computed
     * (k = 0, 1, …, each after {@link #awaitExpert}(k)), then {@link #finishCombine} instead of
     * {@link #startCombine} and {@link #finish}. The bits are the blocking combine's.
     */
    default boolean streamsCombine() {
        return false;
    }

    /** Pipelining: hosted expert k's rows of {@code yr} ([M_local, D]) are final and leave for their sources. */
    default void releaseExpert(int k, Tensor yr) {
        throw new UnsupportedOperationException(getClass().getSimpleName() + " does not stream its combine");
    }

    /** Pipelining: waits for the combine every {@link #releaseExpert} fed and returns what {@link #combine} would have. */
    default Tensor finishCombine() {
        throw new UnsupportedOperationException(getClass().getSimpleName() + " does not stream its combine");
    }

    /**
     * After {@link #dispatch}: rows of another width that ride with the same copies (the Self-Tuning
     * Network's perturbation of each copy's token) to the same experts, in the layout the dispatch
     * returned. One more exchange round.
     *
     * @param sideP [M, w] in the layout {@code xp} had
     * @return [M_local, w]
     */
    Tensor dispatchSide(Tensor sideP);

    /** The inverse of {@link #dispatchSide}: [M_local, w] back to [M, w] at the copies' sources. */
    Tensor combineSide(Tensor sideR);
}
