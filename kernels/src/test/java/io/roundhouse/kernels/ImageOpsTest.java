package io.roundhouse.kernels;

import static io.roundhouse.kernels.OpTestSupport.assertClose;
import static io.roundhouse.kernels.OpTestSupport.dot;
import static io.roundhouse.kernels.OpTestSupport.numericGrad;
import static io.roundhouse.kernels.OpTestSupport.rounded;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The image ops (patches, per-image transposes, per-image means) against plain loops, their
 * backward against finite differences in double, and the identities that make them what they
 * claim: patches then their backward is the identity, a transpose twice is the identity, and each
 * backward is its forward's adjoint.
 */
class ImageOpsTest {
    private static final double GRAD_TOL = 2e-4;

    @ParameterizedTest(name = "{0} images of {1} channel(s), side {2}, patch {3}")
    @CsvSource({"3, 1, 28, 4", "2, 1, 28, 7", "1, 1, 28, 28", "2, 1, 6, 1", "3, 2, 6, 2", "2, 3, 6, 3", "1, 1, 1, 1"})
    void patches(int images, int channels, int side, int patch) {
        OpTestSupport s = new OpTestSupport(11);
        int p = (side / patch) * (side / patch);
        int pixels = channels * side * side;
        int patchSize = channels * patch * patch;
        double[] x = rounded(s.randn(images * pixels, 1));
        Tensor tx = s.tensor("x", x, images, pixels);
        Tensor xp = s.poisoned("xp", images * p, patchSize);
        s.be.patchesForward(xp, tx, channels, side, patch);
        double[] want = Ref.patches(x, images, channels, side, patch);
        assertArrayEquals(want, s.read(xp), "patches are a copy: exact");

        double[] dxp = rounded(s.randn(images * p * patchSize, 1));
        Tensor dx = s.poisoned("dx", images, pixels);
        s.be.patchesBackward(dx, s.tensor("dxp", dxp, images * p, patchSize), channels, side, patch);
        double[] gotDx = s.read(dx);
        assertClose("patches dx", numericGrad(v -> Ref.patches(v, images, channels, side, patch), x.clone(), dxp),
                gotDx, GRAD_TOL);
        assertEquals(dot(want, dxp), dot(x, gotDx), 1e-9, "⟨patches(x), y⟩ = ⟨x, patchesᵀ(y)⟩");

        Tensor back = s.poisoned("back", images, pixels);
        s.be.patchesBackward(back, xp, channels, side, patch);
        assertArrayEquals(x, s.read(back), "the backward undoes the forward");
    }

    @ParameterizedTest(name = "{0} groups of {1} × {2}")
    @CsvSource({"3, 7, 13", "1, 1, 5", "4, 5, 1", "2, 16, 64", "5, 49, 3"})
    void transposeGroups(int groups, int a, int b) {
        OpTestSupport s = new OpTestSupport(12);
        double[] x = rounded(s.randn(groups * a * b, 1));
        Tensor tx = s.tensor("x", x, groups * a, b);
        Tensor y = s.poisoned("y", groups * b, a);
        s.be.transposeGroups(y, tx, groups);
        double[] want = Ref.transposeGroups(x, groups, a, b);
        assertArrayEquals(want, s.read(y));

        double[] dy = rounded(s.randn(groups * a * b, 1));
        Tensor dx = s.poisoned("dx", groups * a, b);
        s.be.transposeGroups(dx, s.tensor("dy", dy, groups * b, a), groups);
        double[] gotDx = s.read(dx);
        assertClose("transposeGroups dx", numericGrad(v -> Ref.transposeGroups(v, groups, a, b), x.clone(), dy),
                gotDx, GRAD_TOL);
        assertEquals(dot(want, dy), dot(x, gotDx), 1e-9, "the transpose back is the adjoint");

        Tensor twice = s.poisoned("twice", groups * a, b);
        s.be.transposeGroups(twice, y, groups);
        assertArrayEquals(x, s.read(twice), "twice is the identity");
    }

    @ParameterizedTest(name = "{0} groups of {1} rows of {2}")
    @CsvSource({"3, 16, 8", "1, 1, 4", "4, 49, 3", "2, 7, 1"})
    void meanGroups(int groups, int p, int d) {
        OpTestSupport s = new OpTestSupport(13);
        double[] x = rounded(s.randn(groups * p * d, 1));
        Tensor tx = s.tensor("x", x, groups * p, d);
        Tensor y = s.poisoned("y", groups, d);
        s.be.meanGroupsForward(y, tx, groups);
        double[] want = Ref.meanGroups(x, groups, p, d);
        assertClose("meanGroups fwd", want, s.read(y), 1e-6);

        double[] dy = rounded(s.randn(groups * d, 1));
        Tensor dx = s.poisoned("dx", groups * p, d);
        s.be.meanGroupsBackward(dx, s.tensor("dy", dy, groups, d), groups);
        double[] gotDx = s.read(dx);
        assertClose("meanGroups dx", numericGrad(v -> Ref.meanGroups(v, groups, p, d), x.clone(), dy), gotDx,
                GRAD_TOL);
        assertEquals(dot(want, dy), dot(x, gotDx), 1e-5, "the backward is the adjoint");
    }

    @Test
    void shapesThatCannotWorkAreNamed() {
        OpTestSupport s = new OpTestSupport(14);
        Tensor x = s.poisoned("x", 2, 28 * 28);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> s.be.patchesForward(s.poisoned("xp", 2 * 25, 25), x, 1, 28, 5));
        assertTrue(e.getMessage().contains("do not cut into patches of 5×5 (the patch side must divide the image side)"),
                e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> s.be.patchesForward(s.poisoned("xp", 2 * 16, 48), x, 1, 28, 7));
        assertTrue(e.getMessage().contains("patchesForward: xp has shape [32, 48], expected [32, 49]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> s.be.transposeGroups(s.poisoned("y", 7, 2), s.poisoned("t", 7, 2), 2));
        assertTrue(e.getMessage().contains("does not split into 2 groups"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> s.be.meanGroupsForward(s.poisoned("y", 3, 4), s.poisoned("t", 12, 5), 3));
        assertTrue(e.getMessage().contains("meanGroupsForward: y has shape [3, 4], expected [3, 5]"), e.getMessage());
    }
}
