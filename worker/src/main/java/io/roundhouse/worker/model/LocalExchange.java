package io.roundhouse.worker.model;

import io.roundhouse.kernels.Tensor;

/** One worker hosts all E experts: every exchange is the identity and copies nothing. */
public final class LocalExchange implements ExpertExchange {
    private final int experts;
    private Tensor pending;  // what the started exchange returns (the identity moves nothing)

    public LocalExchange(int experts) {
        this.experts = experts;
    }

    @Override
    public int rank() {
        return 0;
    }

    @Override
    public int localExperts() {
        return experts;
    }

    @Override
    public int firstLocalExpert() {
        return 0;
    }

    @Override
    public int maxRowsIn(int maxRowsOut) {
        return maxRowsOut;
    }

    @Override
    public void sumRouterStats(float[] stats, int[] offsets) {
        // one worker holds every token
    }

    @Override
    public void sumRouterStats(float[] stats, int[] offsets, float[] nextStats, int[] nextOffsets, ExpertExchange next) {
        // one worker holds every token
    }

    @Override
    public float[] allGather(float[] send, int len) {
        return send;
    }

    @Override
    public Tensor dispatch(Tensor xp, int[] offsets, int[] localOffsets) {
        System.arraycopy(offsets, 0, localOffsets, 0, experts + 1);
        return xp;
    }

    @Override
    public void startCombine(Tensor yr, int[] localOffsets, int[] offsets) {
        pending = yr;
    }

    @Override
    public void startDispatchBackward(Tensor dxr, int[] localOffsets, int[] offsets) {
        pending = dxr;
    }

    @Override
    public void startCombineBackward(Tensor dyp, int[] offsets, int[] localOffsets) {
        pending = dyp;
    }

    @Override
    public Tensor finish() {
        Tensor t = pending;
        pending = null;
        return t;
    }

    @Override
    public Tensor dispatchSide(Tensor sideP) {
        return sideP;
    }

    @Override
    public Tensor combineSide(Tensor sideR) {
        return sideR;
    }
}
