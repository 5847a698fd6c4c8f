package io.roundhouse.worker.model;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Tensor;

/**
 * An MLP-Mixer block over the patches of each image, as the NiNformer's gating unit uses it:
 * {@code v = u + Tᵀ(tokenMlp(T(normT(u))))}, then {@code m = v + channelMlp(normC(v))}, where T
 * transposes each image's [P, D] rows to [D, P] ({@link Backend#transposeGroups}), so the token
 * MLP mixes across an image's P positions, one channel at a time, with weights shared by the
 * channels. Rows [g·P, (g+1)·P) of u are image g's patches.
 */
final class MixerBlock {
    private final Backend be;
    private final int p;
    final NormLayer normT;
    final GeluMlp tokenMlp;    // P → Q → P on [G·D, P]
    final NormLayer normC;
    final GeluMlp channelMlp;  // D → Dc → D
    private final Tensor byChannel;   // [maxG·D, P]
    private final Tensor mixed;       // [maxG·P, D]
    private final Tensor v;           // [maxG·P, D]
    private final Tensor m;           // [maxG·P, D]
    private final Tensor dv;          // [maxG·P, D]
    private final Tensor dByChannel;  // [maxG·D, P]
    private final Tensor dMixed;      // [maxG·P, D]
    private final Tensor du;          // [maxG·P, D]
    private int images;

    /**
     * @param patches       P, the rows of an image
     * @param tokenHidden   Q, the token MLP's hidden width
     * @param channelHidden Dc, the channel MLP's hidden width
     * @param maxImages     images one forward takes at most
     */
    MixerBlock(Backend be, ParamStore ps, String name, NinformerSpec spec, int maxImages) {
        ModelSpec s = spec.moe();
        int d = s.dim();
        this.be = be;
        this.p = spec.patches();
        int rows = maxImages * p;
        int channelRows = maxImages * d;
        double depth = Math.sqrt(2.0 * s.blocks());
        normT = new NormLayer(be, ps, name + ".normT", s.norm(), d, rows);
        tokenMlp = new GeluMlp(be, ps, name + ".token", p, spec.tokenHidden(), p,
                1 / Math.sqrt(spec.tokenHidden()) / depth, channelRows, s.precision());
        normC = new NormLayer(be, ps, name + ".normC", s.norm(), d, rows);
        channelMlp = new GeluMlp(be, ps, name + ".channel", d, spec.channelHidden(), d,
                1 / Math.sqrt(spec.channelHidden()) / depth, rows, s.precision());
        byChannel = be.allocate(name + ".byChannel", DType.FLOAT32, channelRows, p);
        mixed = be.allocate(name + ".mixed", DType.FLOAT32, rows, d);
        v = be.allocate(name + ".v", DType.FLOAT32, rows, d);
        m = be.allocate(name + ".m", DType.FLOAT32, rows, d);
        dv = be.allocate(name + ".dv", DType.FLOAT32, rows, d);
        dByChannel = be.allocate(name + ".dByChannel", DType.FLOAT32, channelRows, p);
        dMixed = be.allocate(name + ".dMixed", DType.FLOAT32, rows, d);
        du = be.allocate(name + ".du", DType.FLOAT32, rows, d);
    }

    /** @param u [G·P, D]; @return m [G·P, D], valid until the next forward */
    Tensor forward(Tensor u) {
        int n = u.dim(0);
        images = n / p;
        int d = u.dim(1);
        Tensor t = byChannel.rows(images * d);
        be.transposeGroups(t, normT.forward(u), images);
        Tensor back = mixed.rows(n);
        be.transposeGroups(back, tokenMlp.forward(t), images);
        Tensor vv = v.rows(n);
        be.copy(vv, u);
        be.axpy(vv, 1f, back);
        Tensor mm = m.rows(n);
        be.copy(mm, vv);
        be.axpy(mm, 1f, channelMlp.forward(normC.forward(vv)));
        return mm;
    }

    /** @return du [G·P, D], valid until the next backward */
    Tensor backward(Tensor dm) {
        int n = dm.dim(0);
        int d = dm.dim(1);
        Tensor dV = dv.rows(n);
        be.copy(dV, dm);
        be.axpy(dV, 1f, normC.backward(channelMlp.backward(dm)));
        Tensor dt = dByChannel.rows(images * d);
        be.transposeGroups(dt, dV, images);
        Tensor dA = dMixed.rows(n);
        be.transposeGroups(dA, tokenMlp.backward(dt), images);
        Tensor dU = du.rows(n);
        be.copy(dU, dV);
        be.axpy(dU, 1f, normT.backward(dA));
        return dU;
    }
}
