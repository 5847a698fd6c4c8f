package io.roundhouse.worker.data;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Tensor;

/** Moves batches of packed token sequences into tensors (see {@link Batcher} for the order). */
public final class SequenceBatcher implements BatchSource {
    private final Backend be;
    private final TokenSequences data;
    private final long seed;
    private final int[] order;
    private final int[] hostInputs;
    private final int[] hostTargets;
    private final Tensor inputs;   // [maxN·T] int
    private final Tensor targets;  // [maxN·T] int

    public SequenceBatcher(Backend be, TokenSequences data, int maxN, long seed) {
        this.be = be;
        this.data = data;
        this.seed = seed;
        this.order = new int[data.size()];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        int t = data.seqLen();
        this.hostInputs = new int[maxN * t];
        this.hostTargets = new int[maxN * t];
        this.inputs = be.allocate(data.name() + ".tokens", DType.INT32, maxN * t);
        this.targets = be.allocate(data.name() + ".targets", DType.INT32, maxN * t);
    }

    @Override
    public int size() {
        return data.size();
    }

    @Override
    public void shuffle(int epoch) {
        Batcher.shuffle(order, seed, epoch);
    }

    @Override
    public void load(int from, int n) {
        int t = data.seqLen();
        for (int r = 0; r < n; r++) {
            data.sequence(order[from + r], hostInputs, hostTargets, r * t);
        }
        be.write(inputs.rows(n * t), hostInputs);
        be.write(targets.rows(n * t), hostTargets);
    }

    @Override
    public Tensor inputs() {
        return inputs;
    }

    @Override
    public Tensor targets() {
        return targets;
    }

    @Override
    public int[] hostTargets() {
        return hostTargets;
    }
}
