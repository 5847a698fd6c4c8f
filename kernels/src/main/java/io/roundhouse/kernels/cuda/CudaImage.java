package io.roundhouse.kernels.cuda;

import io.roundhouse.kernels.Check;
import io.roundhouse.kernels.Tensor;

/**
 * The image ops of the CUDA backend (kernels in {@code image.cu}), as {@code cpu.CpuImage} is the
 * CPU's: patches and their inverse, per-image transposes and per-image means, one thread per output
 * element, the same bits as the CPU.
 */
final class CudaImage {
    private final CudaBackend be;

    CudaImage(CudaBackend be) {
        this.be = be;
    }

    void patchesForward(Tensor xp, Tensor x, int channels, int side, int patch) {
        Check.patches("patchesForward", xp, x, channels, side, patch);
        be.grid("patchesForward", "rh_patches_forward", x.size(), xp, x, channels, side, patch, (long) x.size());
    }

    void patchesBackward(Tensor dx, Tensor dxp, int channels, int side, int patch) {
        Check.patches("patchesBackward", dxp, dx, channels, side, patch);
        be.grid("patchesBackward", "rh_patches_backward", dx.size(), dx, dxp, channels, side, patch,
                (long) dx.size());
    }

    void transposeGroups(Tensor y, Tensor x, int groups) {
        Check.transposeGroups("transposeGroups", y, x, groups);
        be.grid("transposeGroups", "rh_transpose_groups", x.size(), y, x, x.dim(0) / groups, x.dim(1),
                (long) x.size());
    }

    void meanGroupsForward(Tensor y, Tensor x, int groups) {
        int p = Check.meanGroups("meanGroupsForward", y, x, groups);
        be.grid("meanGroupsForward", "rh_mean_groups_forward", y.size(), y, x, p, x.dim(1), (long) y.size());
    }

    void meanGroupsBackward(Tensor dx, Tensor dy, int groups) {
        int p = Check.meanGroups("meanGroupsBackward", dy, dx, groups);
        be.grid("meanGroupsBackward", "rh_mean_groups_backward", dx.size(), dx, dy, p, dx.dim(1), (long) dx.size());
    }
}
