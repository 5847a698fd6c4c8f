package io.roundhouse.kernels.cuda;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.Check;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Tensor;
import io.roundhouse.kernels.cpu.CpuNoisyRouting;
import jcuda.Pointer;

/**
 * The noisy top-k router's ops on the GPU (kernels in {@code noisy.cu}), as {@link CpuNoisyRouting}
 * computes them: ε from the same Philox numbers, the load estimate one thread per row. The
 * per-expert host arrays (E floats) pass through a small device scratch; an expert index ≥ E
 * raises the bad-input flag and fails with the CPU's message. Legend as in {@link Backend}.
 */
final class CudaNoisyRouting {
    private final CudaBackend be;
    private final CudaDevice dev;
    private final CudaTensor flag;
    private CudaTensor perExpert;   // [E] floats to or from the host, grown to the largest E seen

    CudaNoisyRouting(CudaBackend be, CudaDevice dev, CudaTensor flag) {
        this.be = be;
        this.dev = dev;
        this.flag = flag;
    }

    private Tensor perExpert(int e) {
        if (perExpert == null || perExpert.size() < e) {
            perExpert = (CudaTensor) be.allocate("noisy.perExpert", DType.FLOAT32, Math.max(e, 256));
        }
        return perExpert.rows(0, e);
    }

    void noisyLogitsForward(Tensor noisy, Tensor clean, Tensor raw, long seed, long stream, long first) {
        Check.noisyLogits("noisyLogitsForward", noisy, clean, raw, first);
        be.grid("noisyLogitsForward", "rh_noisy_logits_forward", raw.size(), noisy, clean, raw, seed, stream, first,
                (long) raw.size());
    }

    void noisyLogitsBackward(Tensor dRaw, Tensor dNoisy, Tensor raw, long seed, long stream, long first) {
        Check.noisyLogits("noisyLogitsBackward", dRaw, dNoisy, raw, first);
        be.grid("noisyLogitsBackward", "rh_noisy_logits_backward", raw.size(), dRaw, dNoisy, raw, seed, stream, first,
                (long) raw.size());
    }

    void noisyTopKLoadForward(Tensor load, Tensor clean, Tensor noisy, Tensor raw, int k) {
        Check.noisyTopKLoad("noisyTopKLoadForward", noisy, k, load, clean, raw);
        int n = noisy.dim(0);
        int e = noisy.dim(1);
        if (k >= e) {
            be.fill(load, 1f);
            return;
        }
        if (n > 0) {
            dev.bind();
            dev.launch("noisyTopKLoadForward " + noisy, "rh_noisy_topk_load_forward", (n + 127) / 128, 1, 128, load,
                    clean, noisy, raw, n, e, k);
        }
    }

    void noisyTopKLoadBackward(Tensor dClean, Tensor dNoisy, Tensor dRaw, Tensor dLoad, Tensor clean, Tensor noisy,
                               Tensor raw, int k) {
        Check.noisyTopKLoad("noisyTopKLoadBackward", noisy, k, dClean, dNoisy, dRaw, dLoad, clean, raw);
        int n = noisy.dim(0);
        int e = noisy.dim(1);
        if (k >= e || n == 0) {
            return;
        }
        dev.bind();
        dev.launch("noisyTopKLoadBackward " + noisy, "rh_noisy_topk_load_backward", (n + 127) / 128, 1, 128, dClean,
                dNoisy, dRaw, dLoad, clean, noisy, raw, n, e, k);
    }

    void expertGateSums(Tensor topIdx, Tensor gates, float[] sums) {
        Check.expertSlots("expertGateSums", topIdx, gates, sums.length);
        int e = sums.length;
        Tensor out = perExpert(e);
        dev.bind();
        dev.memset32("expertGateSums", flag.ptr(), 0, 1);
        dev.launch("expertGateSums " + topIdx, "rh_expert_gate_sums", e, 1, 256, out, topIdx, gates,
                (long) topIdx.size(), e, flag);
        failOnBadIndex("expertGateSums", topIdx, e);
        be.read(out, sums);
    }

    /** On a bad index the valid slots may already have been added when this throws (the CPU adds none). */
    void addExpertValues(Tensor dGates, Tensor topIdx, float[] values) {
        Check.expertSlots("addExpertValues", topIdx, dGates, values.length);
        int e = values.length;
        Tensor in = perExpert(e);
        be.write(in, values);
        dev.bind();
        dev.memset32("addExpertValues", flag.ptr(), 0, 1);
        be.grid("addExpertValues", "rh_add_expert_values", topIdx.size(), dGates, topIdx, in, (long) topIdx.size(), e,
                flag);
        failOnBadIndex("addExpertValues", topIdx, e);
    }

    /** Reads the bad-input flag (slot + 1, or 0) and throws the CPU's message for that slot. */
    private void failOnBadIndex(String op, Tensor topIdx, int experts) {
        int[] bad = new int[1];
        dev.copyDtoH(op, Pointer.to(bad), flag.ptr(), 4);
        if (bad[0] != 0) {
            int[] idx = new int[topIdx.size()];
            be.read(topIdx, idx);
            int slot = bad[0] - 1;
            Check.expertSlot(op, idx[slot], slot, topIdx.dim(1), experts);
        }
    }
}
