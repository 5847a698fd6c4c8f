package io.roundhouse.worker.model;

import io.roundhouse.kernels.Activation;
import io.roundhouse.kernels.GateMode;
import io.roundhouse.kernels.Precision;
import io.roundhouse.worker.config.ConfigKeys;
import io.roundhouse.worker.config.JobConfig;

/**
 * The shape and regularisation of an MoE classifier.
 *
 * @param inputs          input features per example (784 for 28×28 images)
 * @param classes         output classes C
 * @param dim             model width D
 * @param blocks          MoE blocks L
 * @param experts         experts per block E
 * @param topK            experts per token K
 * @param expertHidden    expert hidden width F
 * @param activation      expert FFN type
 * @param norm            normalisation type
 * @param gate            gating mode
 * @param capacityFactor  capacity factor (0 = dropless)
 * @param dropoutInput    dropout rate on the input
 * @param dropoutBlock    dropout rate on each block's output
 * @param loadBalance     load-balancing loss coefficient α
 * @param zLoss           router z-loss coefficient β
 * @param routerJitter    amplitude of the router's multiplicative input noise in training
 * @param stn             what a Self-Tuning Network adds (tuned hyperparameters, responses)
 * @param precision       the GEMMs of the embedding, the experts and the head (routers stay fp32)
 * @param router          which router chooses the experts ({@code gate} is the softmax router's)
 * @param sharedExperts   always-on experts beside the routed ones (DeepSeekMoE), each as wide as a
 *                        routed one: one FFN of width sharedExperts·expertHidden every token goes through
 */
public record ModelSpec(int inputs, int classes, int dim, int blocks, int experts, int topK, int expertHidden,
                        Activation activation, NormKind norm, GateMode gate, double capacityFactor,
                        double dropoutInput, double dropoutBlock, double loadBalance, double zLoss,
                        double routerJitter, StnSpec stn, Precision precision, RouterSpec router,
                        int sharedExperts) {

    public ModelSpec {
        if (topK < 1 || topK > experts) {
            throw new IllegalArgumentException("topK " + topK + " must be in [1, experts=" + experts + "]");
        }
        if (sharedExperts < 0) {
            throw new IllegalArgumentException("sharedExperts " + sharedExperts + " must be >= 0");
        }
    }

    /** A model without router jitter or Self-Tuning Network. */
    public ModelSpec(int inputs, int classes, int dim, int blocks, int experts, int topK, int expertHidden,
                     Activation activation, NormKind norm, GateMode gate, double capacityFactor,
                     double dropoutInput, double dropoutBlock, double loadBalance, double zLoss) {
        this(inputs, classes, dim, blocks, experts, topK, expertHidden, activation, norm, gate, capacityFactor,
                dropoutInput, dropoutBlock, loadBalance, zLoss, 0, StnSpec.NONE, Precision.FP32);
    }

    /** A model with the softmax router. */
    public ModelSpec(int inputs, int classes, int dim, int blocks, int experts, int topK, int expertHidden,
                     Activation activation, NormKind norm, GateMode gate, double capacityFactor,
                     double dropoutInput, double dropoutBlock, double loadBalance, double zLoss,
                     double routerJitter, StnSpec stn, Precision precision) {
        this(inputs, classes, dim, blocks, experts, topK, expertHidden, activation, norm, gate, capacityFactor,
                dropoutInput, dropoutBlock, loadBalance, zLoss, routerJitter, stn, precision, RouterSpec.SOFTMAX, 0);
    }

    /** The same model with a Self-Tuning Network. */
    public ModelSpec withStn(StnSpec s) {
        return new ModelSpec(inputs, classes, dim, blocks, experts, topK, expertHidden, activation, norm, gate,
                capacityFactor, dropoutInput, dropoutBlock, loadBalance, zLoss, routerJitter, s, precision, router,
                sharedExperts);
    }

    /** The same model with its layer GEMMs at {@code p}. */
    public ModelSpec withPrecision(Precision p) {
        return new ModelSpec(inputs, classes, dim, blocks, experts, topK, expertHidden, activation, norm, gate,
                capacityFactor, dropoutInput, dropoutBlock, loadBalance, zLoss, routerJitter, stn, p, router,
                sharedExperts);
    }

    /** The same model with router {@code r}. */
    public ModelSpec withRouter(RouterSpec r) {
        return new ModelSpec(inputs, classes, dim, blocks, experts, topK, expertHidden, activation, norm, gate,
                capacityFactor, dropoutInput, dropoutBlock, loadBalance, zLoss, routerJitter, stn, precision, r,
                sharedExperts);
    }

    /** The same model with {@code s} shared experts. */
    public ModelSpec withSharedExperts(int s) {
        return new ModelSpec(inputs, classes, dim, blocks, experts, topK, expertHidden, activation, norm, gate,
                capacityFactor, dropoutInput, dropoutBlock, loadBalance, zLoss, routerJitter, stn, precision, router, s);
    }

    /** The fixed value of the model's hyperparameter {@code h} (its initial value when tuned). */
    public double fixed(Hyper h) {
        return switch (h) {
            case DROPOUT_INPUT -> dropoutInput;
            case DROPOUT_BLOCK -> dropoutBlock;
            case ROUTER_JITTER -> routerJitter;
            case LOAD_BALANCE -> loadBalance;
            case Z_LOSS -> zLoss;
            case AUGMENT_SHIFT -> throw new IllegalArgumentException("augment.shift acts on the data, not the model");
            case DROPOUT_ATTENTION -> throw new IllegalArgumentException("dropout.attention is the language model's");
        };
    }

    /** The model a job configuration describes, for {@code inputs} features and {@code classes} classes. */
    public static ModelSpec from(JobConfig c, int inputs, int classes) {
        return new ModelSpec(inputs, classes, c.get(ConfigKeys.MODEL_DIM), c.get(ConfigKeys.MODEL_BLOCKS),
                c.get(ConfigKeys.MODEL_EXPERTS), c.get(ConfigKeys.MODEL_TOP_K), c.get(ConfigKeys.MODEL_EXPERT_HIDDEN),
                c.get(ConfigKeys.MODEL_ACTIVATION), c.get(ConfigKeys.MODEL_NORM), c.get(ConfigKeys.MODEL_GATE),
                c.get(ConfigKeys.MODEL_CAPACITY_FACTOR), c.get(ConfigKeys.MODEL_DROPOUT_INPUT),
                c.get(ConfigKeys.MODEL_DROPOUT_BLOCK), c.get(ConfigKeys.LOSS_LOAD_BALANCE), c.get(ConfigKeys.LOSS_Z),
                c.get(ConfigKeys.MODEL_ROUTER_JITTER), new StnSpec(c.get(ConfigKeys.STN_TUNE).stream().map(Hyper::byId)
                        .toList(), java.util.Set.copyOf(c.get(ConfigKeys.STN_LAYERS))), c.get(ConfigKeys.MODEL_PRECISION),
                RouterSpec.from(c), c.get(ConfigKeys.MODEL_SHARED_EXPERTS));
    }

    /** Expert capacity for {@code tokens} tokens: ceil(cf·K·tokens/E), or 0 (no limit) when dropless. */
    public int capacity(int tokens) {
        return capacityFactor <= 0 ? 0 : (int) Math.ceil(capacityFactor * topK * tokens / experts);
    }
}
