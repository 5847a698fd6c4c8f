package io.roundhouse.worker.config;

import static io.roundhouse.worker.config.ConfigKey.choiceKey;
import static io.roundhouse.worker.config.ConfigKey.doubleKey;
import static io.roundhouse.worker.config.ConfigKey.enumKey;
import static io.roundhouse.worker.config.ConfigKey.intKey;
import static io.roundhouse.worker.config.ConfigKey.doubleListKey;
import static io.roundhouse.worker.config.ConfigKey.intListKey;
import static io.roundhouse.worker.config.ConfigKey.listKey;
import static io.roundhouse.worker.config.ConfigKey.longKey;
import static io.roundhouse.worker.config.ConfigKey.optionalStringKey;
import static io.roundhouse.worker.config.ConfigKey.stringKey;

import io.roundhouse.kernels.Activation;
import io.roundhouse.kernels.GateMode;
import io.roundhouse.kernels.Precision;
import io.roundhouse.worker.model.NormKind;
import java.util.List;
import java.util.Map;

/** Every job configuration key, with its default, documentation and validator. */
public final class ConfigKeys {
    private ConfigKeys() {
    }

    // ---- data ---------------------------------------------------------------------------------
    public static final ConfigKey<String> DATA_DIR = stringKey("data.dir", "/usr/share/datasets/fashion-mnist",
            "folder with the Fashion-MNIST IDX files (train-/t10k- images and labels, .gz or plain)");
    public static final ConfigKey<String> DATA_FORMAT = choiceKey("data.format", "idx", List.of("idx", "parquet"),
            "idx: data.dir holds the (Fashion-)MNIST IDX files; parquet: data.dir holds train.parquet and test.parquet "
            + "with an integer label column and a numeric-array features column (read by the Spark job)");
    public static final ConfigKey<String> DATA_DISTRIBUTION = choiceKey("data.distribution", "broadcast",
            List.of("broadcast", "partitioned"), "Spark job: broadcast (every worker holds all the data: the batch "
            + "order of one worker) or partitioned (the data repartitioned to the W workers, each training on its part)");
    public static final ConfigKey<Integer> DATA_VALIDATION_EXAMPLES = intKey("data.validationExamples", 5000, 0, 1_000_000,
            "training examples held out (after a seeded shuffle) as the validation split");

    public static final ConfigKey<String> DATA_TEXT = stringKey("data.text", "kjv",
            "model.kind=lm: the text, a file, a folder (its files in name order) or a glob; 'roundhouse spark' reads "
            + "any Hadoop FileSystem path (hdfs://, s3a://, file:). kjv: the King James Bible from Debian's bible-kjv "
            + "(the bytes of 'bible \"Genesis 1:1-Revelation 22:21\"', 4,298,239)");
    public static final ConfigKey<Integer> DATA_SEQ_LEN = intKey("data.seqLen", 128, 2, 1 << 16,
            "model.kind=lm: tokens per training sequence T (the text is packed into sequences of T + 1 bytes "
            + "overlapping by one)");
    public static final ConfigKey<Double> DATA_VALIDATION_FRACTION = doubleKey("data.validationFraction", 0.05, 0, 0.5,
            true, "model.kind=lm: the last fraction of the text held out as the validation split (bits per byte are "
            + "reported on it; data.validationExamples is the classifier's); with stn.tune, as much again before it "
            + "is the tuning split the hyper steps read");

    // ---- model --------------------------------------------------------------------------------
    public static final ConfigKey<String> MODEL_KIND = choiceKey("model.kind", "classifier", List.of("classifier", "lm", "ninformer"),
            "classifier: the MoE-MLP image classifier (data.dir); lm: the MoE transformer language model on bytes "
            + "(data.text); ninformer: the NiNformer image classifier (data.dir: patches, gated MLP-Mixer blocks, "
            + "MoE or dense FFNs)");
    public static final ConfigKey<Integer> MODEL_DIM = intKey("model.dim", 192, 1, 65_536,
            "model width D: each 28x28 image (each patch of one in the NiNformer, each byte of text) is embedded to D");
    public static final ConfigKey<Integer> MODEL_BLOCKS = intKey("model.blocks", 2, 1, 256,
            "number of [norm -> MoE FFN -> residual] blocks L");
    public static final ConfigKey<Integer> MODEL_EXPERTS = intKey("model.experts", 8, 1, 4096,
            "experts per MoE block E");
    public static final ConfigKey<Integer> MODEL_TOP_K = intKey("model.topK", 2, 1, 4096,
            "experts each token is sent to K (at most model.experts)");
    public static final ConfigKey<Integer> MODEL_EXPERT_HIDDEN = intKey("model.expertHidden", 384, 1, 1 << 20,
            "hidden width F of each expert FFN");
    public static final ConfigKey<Activation> MODEL_ACTIVATION = enumKey("model.activation", Activation.GELU,
            Activation.class, "expert FFN type: gelu (GELU-MLP) or swiglu");
    public static final ConfigKey<NormKind> MODEL_NORM = enumKey("model.norm", NormKind.LAYERNORM, NormKind.class,
            "normalisation before each MoE block and the head: layernorm or rmsnorm");
    public static final ConfigKey<GateMode> MODEL_GATE = enumKey("model.gate", GateMode.TOPK_SOFTMAX, GateMode.class,
            "gating: softmax_topk (no renormalisation), softmax_topk_renorm, or topk_softmax");
    public static final ConfigKey<String> MODEL_ROUTER = choiceKey("model.router", "softmax",
            List.of("softmax", "sigmoid", "noisy", "dense-to-sparse", "expert-choice"), "how tokens choose experts "
            + "(docs/routers.md): softmax (softmax of the logits, top-k, gates by model.gate; Switch with "
            + "model.topK=1), sigmoid (DeepSeek-V3: sigmoid scores, top-k of score + a per-expert bias that balances "
            + "the load without an auxiliary loss, gates the chosen scores normalised), noisy (Shazeer 2017: learned "
            + "Gaussian noise on the logits in training, top-k, gates by model.gate, importance and load losses), "
            + "dense-to-sparse (softmax with an annealed temperature, every expert whose gate reaches "
            + "model.routerThreshold, at most model.topK) or expert-choice (Zhou 2022: each expert takes its "
            + "top-scored tokens of the global batch)");
    public static final ConfigKey<Double> MODEL_ROUTER_BIAS_RATE = doubleKey("model.routerBiasRate", 0.001, 0, 1, true,
            "model.router=sigmoid: after each step every expert's selection bias moves by this much towards the mean "
            + "load (+ when under it, - when over it); 0 = no bias");
    public static final ConfigKey<Double> MODEL_TEMPERATURE_START = doubleKey("model.temperature.start", 2.0, 1e-3,
            1e3, true, "model.router=dense-to-sparse: the softmax temperature at step 0 (high: every expert gets a "
            + "similar gate, dense)");
    public static final ConfigKey<Double> MODEL_TEMPERATURE_END = doubleKey("model.temperature.end", 0.1, 1e-3, 1e3,
            true, "model.router=dense-to-sparse: the temperature from model.temperature.steps on (low: sparse)");
    public static final ConfigKey<String> MODEL_TEMPERATURE_SHAPE = choiceKey("model.temperature.shape",
            "exponential", List.of("linear", "cosine", "exponential"), "model.router=dense-to-sparse: how the "
            + "temperature moves from start to end: linear, cosine (half a cosine) or exponential (geometric)");
    public static final ConfigKey<Integer> MODEL_TEMPERATURE_STEPS = intKey("model.temperature.steps", 0, 0,
            Integer.MAX_VALUE, "model.router=dense-to-sparse: steps the anneal takes; 0 = train.maxSteps (which "
            + "must then be set)");
    public static final ConfigKey<Double> MODEL_ROUTER_THRESHOLD = doubleKey("model.routerThreshold", 0.05, 0, 1,
            true, "model.router=dense-to-sparse: a token goes to every expert whose gate is at least this, at most "
            + "model.topK of them (set model.topK = model.experts to start fully dense); 0 = always top-k");
    public static final ConfigKey<String> MODEL_ROUTER_ACTIVATION = choiceKey("model.routerActivation", "none",
            List.of("none", "sigmoid"), "model.router=dense-to-sparse: none gives the temperature gate "
            + "softmax((xW + b)/tau); sigmoid the activation dense-to-sparse gate softmax(sigmoid(xW + b)/tau) "
            + "(where b sits: model.routerBias)");
    public static final ConfigKey<String> MODEL_ROUTER_BIAS = choiceKey("model.routerBias", "none",
            List.of("none", "inside", "outside"), "model.router=dense-to-sparse: a learnt per-expert bias b, none; "
            + "inside (added to xW, before the activation and the temperature); or outside (added after both: "
            + "softmax(a(xW)/tau + b))");
    public static final ConfigKey<String> MODEL_PRE_GATING = choiceKey("model.preGating", "off", List.of("off", "on"),
            "Pre-gated MoE: on, each MoE layer's router reads the previous MoE layer's input (the first layer routes "
            + "itself too), so a layer's routing, capacity plan and expert counts are known, and its counts sent to "
            + "the other workers, one layer early; needs two MoE layers or more; not with expert-choice");
    public static final ConfigKey<String> MODEL_EXPERT_CHOICE_CAUSAL = choiceKey("model.expertChoiceCausal", "off",
            List.of("off", "on"), "model.router=expert-choice in a language model: on accepts that a token's experts "
            + "depend on later tokens of the batch (information leaks backwards in training; evaluation and "
            + "generation use token choice, top-round(capacityFactor*K)); off refuses expert choice there");
    public static final ConfigKey<Integer> MODEL_SHARED_EXPERTS = intKey("model.sharedExperts", 0, 0, 64,
            "always-on experts beside the routed ones in every MoE block (DeepSeekMoE), each as wide as a routed one "
            + "(model.expertHidden); every token goes through them, gate 1; 0 = none");
    public static final ConfigKey<Double> MODEL_CAPACITY_FACTOR = doubleKey("model.capacityFactor", 1.25, 0, 64, true,
            "expert capacity C = ceil(factor * K * tokens / E) per batch; 0 = dropless (no limit)");
    public static final ConfigKey<Double> MODEL_DROPOUT_INPUT = doubleKey("model.dropout.input", 0.1, 0, 0.9, true,
            "the image classifiers' dropout rate on the input pixels");
    public static final ConfigKey<Double> MODEL_DROPOUT_BLOCK = doubleKey("model.dropout.block", 0.1, 0, 0.9, true,
            "dropout rate on each block's residual branch before the add (model.kind=lm: after attention and after the FFN)");
    public static final ConfigKey<Integer> MODEL_HEADS = intKey("model.heads", 4, 1, 1024,
            "model.kind=lm: attention heads H (model.dim / H must be even)");
    public static final ConfigKey<Integer> MODEL_KV_HEADS = intKey("model.kvHeads", 0, 0, 1024,
            "model.kind=lm: key/value heads (dividing model.heads: grouped-query attention); 0 = model.heads");
    public static final ConfigKey<Double> MODEL_ROPE_THETA = doubleKey("model.ropeTheta", 10000, 1, 1e9, true,
            "model.kind=lm: base of the rotary position embedding");
    public static final ConfigKey<Integer> MODEL_MOE_EVERY = intKey("model.moeEvery", 1, 0, 256,
            "model.kind=lm or ninformer: block b's FFN is MoE when (b+1) % moeEvery == 0 (1: every block, 2: every "
            + "other, 0: none, the dense baseline); the other blocks have a dense FFN (SwiGLU in the language model, "
            + "GELU in the NiNformer)");
    public static final ConfigKey<Integer> MODEL_DENSE_HIDDEN = intKey("model.denseHidden", 0, 0, 1 << 20,
            "model.kind=lm or ninformer: hidden width of the dense blocks' FFN; 0 = topK * expertHidden (the active width of an MoE "
            + "block, so dense and MoE models of equal active parameters differ by one key)");
    public static final ConfigKey<Integer> MODEL_PATCH_SIZE = intKey("model.patchSize", 4, 1, 1024,
            "model.kind=ninformer: the side of the square patches each image is cut into, in pixels; it must divide "
            + "the image side (28: 1, 2, 4, 7, 14 or 28); each patch is a token of the MoE layers");
    public static final ConfigKey<Integer> MODEL_TOKEN_HIDDEN = intKey("model.tokenHidden", 0, 0, 1 << 20,
            "model.kind=ninformer: hidden width of the token-mixing MLP (across an image's patches); 0 = twice the "
            + "patches per image");
    public static final ConfigKey<Integer> MODEL_CHANNEL_HIDDEN = intKey("model.channelHidden", 0, 0, 1 << 20,
            "model.kind=ninformer: hidden width of the channel-mixing MLP; 0 = 2 * model.dim");
    public static final ConfigKey<String> MODEL_ATTENTION_GATE = choiceKey("model.attentionGate", "on",
            List.of("on", "off"), "model.kind=lm: a sigmoid gate on each head's attention output, from a DxD "
            + "projection of the block's normalised input (gated attention)");
    public static final ConfigKey<String> MODEL_TIE_EMBEDDINGS = choiceKey("model.tieEmbeddings", "off",
            List.of("on", "off"), "model.kind=lm: the output projection is the token embedding's transpose (one "
            + "VxD table for both; tie_word_embeddings)");
    public static final ConfigKey<Double> MODEL_DROPOUT_ATTENTION = doubleKey("model.dropout.attention", 0.0, 0, 0.9,
            true, "model.kind=lm: dropout rate on the attention probabilities");
    public static final ConfigKey<Precision> MODEL_PRECISION = enumKey("model.precision", Precision.FP32,
            Precision.class, "GEMM precision of the embedding, the experts and the head: fp32, or bf16 (operands "
            + "rounded to bfloat16, fp32 accumulation: tensor cores on a GPU, emulated and slower on the CPU); "
            + "routers, norms, weights, gradients and the optimizer stay fp32");
    public static final ConfigKey<Double> MODEL_ROUTER_JITTER = doubleKey("model.routerJitter", 0.0, 0, 0.5, true,
            "router input jitter a: in training the router sees x*U(1-a, 1+a), element-wise (Switch); 0 = off");

    // ---- data augmentation --------------------------------------------------------------------
    public static final ConfigKey<Integer> AUGMENT_SHIFT = intKey("augment.shift", 0, 0, 8,
            "training images are shifted by up to this many pixels along each axis (uniform per image, the border "
            + "filled with background); 0 = off; square images (IDX data) only");

    // ---- adversarial training -----------------------------------------------------------------
    public static final ConfigKey<String> ADV_TRAINING = choiceKey("adv.training", "off",
            List.of("off", "trades", "advmoe"),
            "image models: adversarial training against L-inf PGD; trades = TRADES (CE(f(x), y) + beta*KL(f(x) || "
            + "f(x'))), advmoe = AdvMoE's alternation (per batch: experts and backbone on TRADES with the routers "
            + "frozen, then the routers alone on fresh adversarial examples); off = plain training");
    public static final ConfigKey<Double> ADV_EPSILON = doubleKey("adv.epsilon", 0.1, 0, 1, true,
            "adversarial training: the attack's L-inf radius in pixel units ([0, 1], before normalisation)");
    public static final ConfigKey<Integer> ADV_STEPS = intKey("adv.steps", 5, 1, 1000,
            "adversarial training: PGD steps per adversarial batch");
    public static final ConfigKey<Double> ADV_STEP_SIZE = doubleKey("adv.stepSize", 0, 0, 1, true,
            "adversarial training: PGD step size in pixel units; 0 = adv.epsilon/4");
    public static final ConfigKey<String> ADV_RANDOM_START = choiceKey("adv.randomStart", "on", List.of("on", "off"),
            "adversarial training: PGD starts from a uniform random point of the epsilon ball (on) or the image (off)");
    public static final ConfigKey<Double> ADV_BETA = doubleKey("adv.beta", 6.0, 0, 1000, true,
            "adversarial training: TRADES's beta, the weight of the KL term (robustness against clean accuracy)");

    // ---- early exits (roundhouse early-exit) --------------------------------------------------
    public static final ConfigKey<List<Double>> EXIT_LAMBDA = doubleListKey("exit.lambda", "0.7", 0, 1000,
            "roundhouse early-exit: lambda, the price of compute in the gates' target exit argmin_l CE_l + "
            + "lambda*cost_l (cost: the FLOPs fraction of leaving at exit l); a comma-separated list is a sweep, "
            + "one set of exits trained per value");
    public static final ConfigKey<List<Integer>> EXIT_BLOCKS = intListKey("exit.blocks", "", 0, 1 << 16,
            "roundhouse early-exit: the blocks after which an exit (linear head and gate) sits, e.g. 0,1,2; empty = "
            + "every block but the last (whose exit is the model's own head)");
    public static final ConfigKey<Integer> EXIT_EPOCHS = intKey("exit.epochs", 10, 1, 1000,
            "roundhouse early-exit: passes over the training images to train the exits");
    public static final ConfigKey<Integer> EXIT_ALTERNATE_STEPS = intKey("exit.alternateSteps", 200, 1, 1_000_000,
            "roundhouse early-exit: batches between switches of the alternation (heads with the gates frozen, then "
            + "gates with the heads frozen)");
    public static final ConfigKey<Double> EXIT_LR = doubleKey("exit.lr", 0.02, 0, 10, true,
            "roundhouse early-exit: Adam's learning rate for the exits' heads and gates");

    // ---- loss ---------------------------------------------------------------------------------
    public static final ConfigKey<Double> LOSS_LOAD_BALANCE = doubleKey("loss.loadBalance", 0.01, 0, 100, true,
            "coefficient alpha of the Switch load-balancing loss alpha*E*sum_e f_e*P_e, per block");
    public static final ConfigKey<Double> LOSS_Z = doubleKey("loss.zLoss", 0.001, 0, 100, true,
            "coefficient beta of the router z-loss beta*mean(logsumexp(logits)^2), per block");
    public static final ConfigKey<Double> LOSS_IMPORTANCE = doubleKey("loss.importance", 0.01, 0, 100, true,
            "model.router=noisy: coefficient of the importance loss CV(sum of each expert's gates over the batch)^2");
    public static final ConfigKey<Double> LOSS_LOAD = doubleKey("loss.load", 0.01, 0, 100, true,
            "model.router=noisy: coefficient of the load loss CV(sum over the batch of each expert's probability "
            + "of being in the top-k under fresh noise)^2");

    // ---- Self-Tuning Network ------------------------------------------------------------------
    public static final ConfigKey<List<String>> STN_TUNE = listKey("stn.tune", "",
            List.of("dropout.input", "dropout.block", "dropout.attention", "router.jitter", "loss.loadBalance",
                    "loss.zLoss", "augment.shift"),
            Map.of("train.weightDecay", "AdamW's decoupled weight decay is not a loss term a per-example "
                    + "perturbation can reach; it is not tunable by STN here"),
            "hyperparameters tuned online by a Self-Tuning Network, comma-separated (each starts at its key's value); "
            + "the classifier: dropout.input, dropout.block, router.jitter, loss.loadBalance, loss.zLoss, "
            + "augment.shift; model.kind=lm: dropout.block, dropout.attention, router.jitter, loss.loadBalance, "
            + "loss.zLoss (one perturbation per token; its hyper steps read a tuning split held out before the "
            + "validation split); model.kind=ninformer: dropout.block, router.jitter, loss.loadBalance, loss.zLoss "
            + "(one perturbation per patch; stn.layers from embed, router, experts); empty = off");
    public static final ConfigKey<List<String>> STN_LAYERS = listKey("stn.layers", "embed,router,head",
            List.of("embed", "attention", "router", "experts", "head"), Map.of(),
            "layers that get a best-response (y += s*(x W_r) + t*b_r with [s;t] = U*(perturbation)): embed (a "
            + "language model's: a response table), attention (model.kind=lm: each block's output projection), "
            + "router, experts (each expert, from its input to its output; costs two more exchange rounds per layer), "
            + "head (not the NiNformer's)");
    public static final ConfigKey<Integer> STN_WARMUP_STEPS = intKey("stn.warmupSteps", 300, 0, Integer.MAX_VALUE,
            "weight steps (on perturbed hyperparameters) before the first hyper step");
    public static final ConfigKey<Integer> STN_TRAIN_STEPS = intKey("stn.trainSteps", 5, 1, 10_000,
            "T_train: weight steps between hyper steps");
    public static final ConfigKey<Integer> STN_VALID_STEPS = intKey("stn.validSteps", 1, 1, 63,
            "T_valid: hyper steps (each on one validation batch of train.batchSize) after every T_train weight steps");
    public static final ConfigKey<Double> STN_LR = doubleKey("stn.lr", 0.01, 0, 10, true,
            "Adam learning rate of the hyper steps (on the unconstrained hyperparameters and perturbation scales)");
    public static final ConfigKey<Double> STN_SIGMA = doubleKey("stn.sigma", 0.5, 1e-4, 10, true,
            "initial perturbation scale sigma, in unconstrained units (learnt afterwards)");
    public static final ConfigKey<Double> STN_ENTROPY_WEIGHT = doubleKey("stn.entropyWeight", 0.001, 0, 10, true,
            "tau: the hyper steps minimise L_val - tau*entropy(sigma), which keeps the perturbations from collapsing");

    // ---- training -----------------------------------------------------------------------------
    public static final ConfigKey<Integer> TRAIN_EPOCHS = intKey("train.epochs", 12, 1, 100_000,
            "passes over the training split");
    public static final ConfigKey<String> TRAIN_TRACE_STEPS = optionalStringKey("train.traceSteps",
            "steps whose timeline is recorded, e.g. 100 or 100,200 or 100-102: every worker's phases as intervals, "
            + "written to trace.json in the run directory (Chrome trace events: open it in Perfetto or "
            + "chrome://tracing); empty: none");
    public static final ConfigKey<Integer> TRAIN_MAX_STEPS = intKey("train.maxSteps", 0, 0, Integer.MAX_VALUE,
            "stop after this many optimizer steps (0 = run all epochs); the LR schedule spans the shorter");
    public static final ConfigKey<Integer> TRAIN_BATCH_SIZE = intKey("train.batchSize", 256, 1, 1 << 20,
            "examples per optimizer step (the last partial batch of an epoch is skipped)");
    public static final ConfigKey<Double> TRAIN_LR = doubleKey("train.lr", 2e-3, 0, 10, true,
            "peak learning rate of AdamW");
    public static final ConfigKey<Double> TRAIN_MIN_LR_FRACTION = doubleKey("train.minLrFraction", 0.02, 0, 1, true,
            "learning rate at the end of the cosine decay, as a fraction of train.lr");
    public static final ConfigKey<Integer> TRAIN_WARMUP_STEPS = intKey("train.warmupSteps", 200, 0, Integer.MAX_VALUE,
            "steps of linear learning-rate warm-up from 0 before the cosine decay");
    public static final ConfigKey<Double> TRAIN_WEIGHT_DECAY = doubleKey("train.weightDecay", 0.05, 0, 10, true,
            "AdamW decoupled weight decay on weight matrices (not on biases or norm gains)");
    public static final ConfigKey<Double> TRAIN_BETA1 = doubleKey("train.beta1", 0.9, 0, 1, false,
            "AdamW first-moment decay");
    public static final ConfigKey<Double> TRAIN_BETA2 = doubleKey("train.beta2", 0.999, 0, 1, false,
            "AdamW second-moment decay");
    public static final ConfigKey<Double> TRAIN_CLIP_NORM = doubleKey("train.clipNorm", 1.0, 0, 1e9, true,
            "clip gradients to this global L2 norm; 0 = no clipping");
    public static final ConfigKey<Long> TRAIN_SEED = longKey("train.seed", 1,
            "seed of initialisation, shuffling, the validation split and dropout masks");
    public static final ConfigKey<Integer> TRAIN_EVAL_BATCH_SIZE = intKey("train.evalBatchSize", 1000, 1, 1 << 20,
            "examples per forward pass when evaluating (no dropout, dropless routing)");

    // ---- checkpoints ----------------------------------------------------------------------------
    public static final ConfigKey<Integer> CHECKPOINT_EVERY_STEPS = intKey("checkpoint.everySteps", 500, 0,
            Integer.MAX_VALUE, "write a checkpoint every this many steps and after the last (0 = never)");
    public static final ConfigKey<Integer> CHECKPOINT_KEEP = intKey("checkpoint.keep", 2, 0, Integer.MAX_VALUE,
            "how many checkpoints to keep, the newest (older ones are deleted once a newer one is complete; 0 = all)");
    public static final ConfigKey<String> CHECKPOINT_DIR = optionalStringKey("checkpoint.dir",
            "folder for checkpoints (empty: checkpoints/ in the run directory)");
    public static final ConfigKey<String> TRAIN_RESUME = optionalStringKey("train.resume",
            "resume from a checkpoint: a step-N folder, or a folder of them (the latest complete one); empty: start fresh");

    // ---- workers and comms --------------------------------------------------------------------
    public static final ConfigKey<Integer> WORKERS = intKey("workers", 1, 1, 4096,
            "workers W: each hosts a share of the experts and trains on 1/W of every batch; "
            + "'roundhouse train' runs W > 1 as separate JVMs on this host");
    public static final ConfigKey<String> COMMS_TRANSPORT = choiceKey("comms.transport", "auto",
            List.of("auto", "ipc", "udp"), "how workers exchange tokens and gradients: auto (IPC between workers on "
            + "one host, UDP between hosts, from each worker's host), ipc (shared memory, every worker on one host) "
            + "or udp (every link, loopback included)");
    public static final ConfigKey<Integer> COMMS_TIMEOUT_MS = intKey("comms.timeoutMs", 30_000, 100, 3_600_000,
            "longest wait for a peer in any exchange once training runs, before failing with an error naming it "
            + "(how soon a dead worker is noticed)");
    public static final ConfigKey<Integer> COMMS_TERM_LENGTH_BYTES = intKey("comms.termLengthBytes", 4 << 20, 64 << 10,
            1 << 30, "Aeron term length of each publication, a power of two (each worker-to-worker log takes 3 terms "
            + "of the Aeron directory's space; at most half a term is in flight)");
    public static final ConfigKey<String> COMMS_AERON_DIR = optionalStringKey("comms.aeronDir",
            "folder for the Aeron media driver's files (its logs are memory-mapped: a RAM-backed folder is fastest); "
            + "empty: /dev/shm where it exists, else the temporary folder");
    public static final ConfigKey<String> COMMS_ALL_TO_ALL = choiceKey("comms.allToAll", "flat",
            List.of("flat", "hierarchical"), "how tokens move between workers: flat (every worker sends every other "
            + "one message) or hierarchical (within each host first, then one message per host pair and local rank: "
            + "fewer, larger messages across hosts, two rounds and more copies; needs as many workers on every host, "
            + "else it is flat)");
    public static final ConfigKey<Integer> COMMS_MTU_BYTES = intKey("comms.mtuBytes", 0, 0, 65504,
            "largest Aeron frame, a multiple of 32 in [1408, 65504]; 0 = the transport's default (8192 over UDP, which "
            + "a 1500-byte network carries as IP fragments: across hosts without jumbo frames set 1408, or raise the "
            + "network's MTU; 65504 over IPC); at most an eighth of comms.termLengthBytes");
    public static final ConfigKey<Integer> COMMS_SOCKET_BUFFER_BYTES = intKey("comms.socketBufferBytes", 0, 0,
            1 << 30, "UDP socket send and receive buffers asked of the OS for every channel (Aeron's so-sndbuf and "
            + "so-rcvbuf; the OS caps them at net.core.wmem_max / rmem_max); 0 = the OS default; raise it for "
            + "fast links with delay (about bandwidth x round trip)");
    public static final ConfigKey<String> COMMS_IDLE = choiceKey("comms.idle", "auto",
            List.of("auto", "backoff", "yielding", "busy"), "what a worker does while it waits for its peers: auto "
            + "(busy where the host has a core to spare: one per worker on it, the media driver's threads and one "
            + "more; else yielding when a link is UDP and backoff when all are IPC), backoff (spin, yield, then park "
            + "for microseconds: leaves the cores to others, but a parked thread wakes late), yielding (spin and "
            + "yield: the lowest latency where workers and media drivers outnumber the cores) or busy (spin: the "
            + "lowest latency where every worker has a core to spare)");
    public static final ConfigKey<String> COMMS_OVERLAP = choiceKey("comms.overlap", "on", List.of("on", "all", "off"),
            "on: an MoE layer's exchanges run while the work that does not need them is computed (each hosted "
            + "expert as soon as its rows are in while the next one's travel, and its results sent back at once, the "
            + "experts' weight gradients while the input gradients travel back, the shared experts while their rows "
            + "travel); "
            + "all: also the dense gradients' all-reduce, in buckets started as each block's backward ends, on a comms "
            + "thread (where the link is idle during backward; on a slow link shared with the token exchanges it "
            + "delays them); off: every exchange finishes before the next computation; the results are the same "
            + "bits every way");
    public static final ConfigKey<Integer> COMMS_START_TIMEOUT_MS = intKey("comms.startTimeoutMs", 120_000, 100,
            3_600_000, "longest wait for every worker to start: to connect, then to load its data and set up its "
            + "backend (worker JVMs and Spark executors start at different speeds), before failing with an error "
            + "naming the missing ones");

    // ---- runtime and output -------------------------------------------------------------------
    public static final ConfigKey<String> BACKEND = choiceKey("backend", "auto", List.of("auto", "cpu", "cuda"),
            "where the math runs: cpu, cuda (GPU 0, or the GPU Spark assigns; refused if it fails its start-up check "
            + "against the CPU), or auto (cuda where a GPU is and it passes that check, else cpu; the choice and why "
            + "are logged)");
    public static final ConfigKey<String> BACKEND_CUDA_SYNC = choiceKey("backend.cudaSync", "off", List.of("off", "on"),
            "debugging: on waits for every CUDA kernel as it is launched, so a kernel's error is reported by that "
            + "kernel instead of by a later call (slow); off for training");
    public static final ConfigKey<Integer> FAULT_FAIL_AT_STEP = intKey("fault.failAtStep", 0, 0, Integer.MAX_VALUE,
            "fault injection for recovery drills (scripts/fault-matrix, docs/reliability.md): in the Spark job, "
            + "worker 0 fails its task when it reports this step, in the stage's first attempt only, so Spark "
            + "retries the stage from the last checkpoint; 0: off (never set it for real training)");
    public static final ConfigKey<String> OUTPUT_DIR = stringKey("output.dir", "runs",
            "folder under which each run gets its own directory (created if missing)");
    public static final ConfigKey<Integer> LOG_EVERY_STEPS = intKey("log.everySteps", 50, 1, Integer.MAX_VALUE,
            "print a progress line every this many steps (metrics are written every step)");

    /** All keys, in the order they are documented and printed. */
    public static final List<ConfigKey<?>> ALL = List.of(
            DATA_DIR, DATA_FORMAT, DATA_DISTRIBUTION, DATA_VALIDATION_EXAMPLES, DATA_TEXT, DATA_SEQ_LEN,
            DATA_VALIDATION_FRACTION,
            MODEL_KIND, MODEL_DIM, MODEL_BLOCKS, MODEL_EXPERTS, MODEL_TOP_K, MODEL_EXPERT_HIDDEN, MODEL_ACTIVATION, MODEL_NORM,
            MODEL_GATE, MODEL_ROUTER, MODEL_ROUTER_BIAS_RATE, MODEL_TEMPERATURE_START,
            MODEL_TEMPERATURE_END, MODEL_TEMPERATURE_SHAPE, MODEL_TEMPERATURE_STEPS, MODEL_ROUTER_THRESHOLD,
            MODEL_ROUTER_ACTIVATION, MODEL_ROUTER_BIAS, MODEL_PRE_GATING, MODEL_EXPERT_CHOICE_CAUSAL,
            MODEL_SHARED_EXPERTS, MODEL_CAPACITY_FACTOR, MODEL_DROPOUT_INPUT, MODEL_DROPOUT_BLOCK, MODEL_ROUTER_JITTER,
            MODEL_HEADS, MODEL_KV_HEADS, MODEL_ROPE_THETA, MODEL_MOE_EVERY, MODEL_DENSE_HIDDEN, MODEL_PATCH_SIZE,
            MODEL_TOKEN_HIDDEN, MODEL_CHANNEL_HIDDEN, MODEL_ATTENTION_GATE,
            MODEL_TIE_EMBEDDINGS, MODEL_DROPOUT_ATTENTION, MODEL_PRECISION, AUGMENT_SHIFT,
            ADV_TRAINING, ADV_EPSILON, ADV_STEPS, ADV_STEP_SIZE, ADV_RANDOM_START, ADV_BETA,
            EXIT_LAMBDA, EXIT_BLOCKS, EXIT_EPOCHS, EXIT_ALTERNATE_STEPS, EXIT_LR, LOSS_LOAD_BALANCE, LOSS_Z, LOSS_IMPORTANCE, LOSS_LOAD,
            STN_TUNE, STN_LAYERS, STN_WARMUP_STEPS, STN_TRAIN_STEPS, STN_VALID_STEPS, STN_LR, STN_SIGMA,
            STN_ENTROPY_WEIGHT,
            TRAIN_EPOCHS, TRAIN_MAX_STEPS, TRAIN_BATCH_SIZE, TRAIN_LR, TRAIN_MIN_LR_FRACTION, TRAIN_WARMUP_STEPS,
            TRAIN_WEIGHT_DECAY, TRAIN_BETA1, TRAIN_BETA2, TRAIN_CLIP_NORM, TRAIN_SEED, TRAIN_EVAL_BATCH_SIZE, TRAIN_TRACE_STEPS,
            CHECKPOINT_EVERY_STEPS, CHECKPOINT_KEEP, CHECKPOINT_DIR, TRAIN_RESUME,
            WORKERS, COMMS_TRANSPORT, COMMS_TIMEOUT_MS, COMMS_START_TIMEOUT_MS, COMMS_IDLE, COMMS_OVERLAP, COMMS_TERM_LENGTH_BYTES,
            COMMS_ALL_TO_ALL, COMMS_MTU_BYTES, COMMS_SOCKET_BUFFER_BYTES,
            COMMS_AERON_DIR,
            BACKEND, BACKEND_CUDA_SYNC, FAULT_FAIL_AT_STEP, OUTPUT_DIR, LOG_EVERY_STEPS);

    /** The key called {@code name}, or null. */
    public static ConfigKey<?> byName(String name) {
        for (ConfigKey<?> k : ALL) {
            if (k.name().equals(name)) {
                return k;
            }
        }
        return null;
    }
}
