package io.roundhouse.worker.train;

import io.roundhouse.kernels.Backend;
import io.roundhouse.worker.config.ConfigKeys;
import io.roundhouse.worker.config.JobConfig;
import io.roundhouse.worker.model.ParamStore;
import java.nio.file.Path;
import java.util.List;

/**
 * What a training run reads of its {@link JobConfig}, resolved once when the trainer is made: the
 * trainer's parts read these values instead of looking keys up again. The config itself stays
 * here for the collaborators that take one ({@link ModelKind#build}, {@link RunCheckpoints},
 * {@link StnTuner}), and is what the run directory records.
 *
 * @param config             the job's configuration, as given
 * @param kind               {@code model.kind}: which model, on which data
 * @param workers            {@code workers} W, as configured (a group's size must match it)
 * @param batchSize          {@code train.batchSize}: examples per optimizer step, over every worker
 * @param evalBatch          examples per evaluation forward ({@link ModelKind#evalBatch})
 * @param seed               {@code train.seed}
 * @param epochs             {@code train.epochs}
 * @param maxSteps           {@code train.maxSteps} (0: every epoch)
 * @param schedule           the learning-rate schedule's settings
 * @param optimizer          AdamW's settings
 * @param logEverySteps      {@code log.everySteps}: steps between progress lines
 * @param backend            {@code backend}: auto, cpu or cuda
 * @param outputDir          {@code output.dir}: where rank 0 creates the run directory
 * @param dataFormat         {@code data.format} (the classifier's: idx or parquet)
 * @param dataDir            {@code data.dir} (the classifier's images)
 * @param validationExamples {@code data.validationExamples} (the classifier's validation split)
 * @param augmentShift       {@code augment.shift} in pixels (the classifier's; 0: off)
 * @param experts            {@code model.experts} E
 * @param modelDim           {@code model.dim} D, the width of the rows the expert exchange sends
 * @param stn                the Self-Tuning Network's schedule
 */
public record RunContext(JobConfig config, ModelKind kind, int workers, int batchSize, int evalBatch, long seed,
                         int epochs, int maxSteps, Schedule schedule, Optimizer optimizer, int logEverySteps,
                         String backend, Path outputDir, String dataFormat, Path dataDir, int validationExamples,
                         int augmentShift, int experts, int modelDim, Stn stn) {

    /** The run context of {@code config}. */
    public static RunContext of(JobConfig config) {
        ModelKind kind = ModelKind.of(config);
        return new RunContext(config, kind, config.get(ConfigKeys.WORKERS), config.get(ConfigKeys.TRAIN_BATCH_SIZE),
                kind.evalBatch(config), config.get(ConfigKeys.TRAIN_SEED), config.get(ConfigKeys.TRAIN_EPOCHS),
                config.get(ConfigKeys.TRAIN_MAX_STEPS),
                new Schedule(config.get(ConfigKeys.TRAIN_LR), config.get(ConfigKeys.TRAIN_MIN_LR_FRACTION),
                        config.get(ConfigKeys.TRAIN_WARMUP_STEPS)),
                new Optimizer(config.get(ConfigKeys.TRAIN_BETA1), config.get(ConfigKeys.TRAIN_BETA2),
                        config.get(ConfigKeys.TRAIN_WEIGHT_DECAY), config.get(ConfigKeys.TRAIN_CLIP_NORM)),
                config.get(ConfigKeys.LOG_EVERY_STEPS), config.get(ConfigKeys.BACKEND),
                Path.of(config.get(ConfigKeys.OUTPUT_DIR)), config.get(ConfigKeys.DATA_FORMAT),
                Path.of(config.get(ConfigKeys.DATA_DIR)), config.get(ConfigKeys.DATA_VALIDATION_EXAMPLES),
                config.get(ConfigKeys.AUGMENT_SHIFT), config.get(ConfigKeys.MODEL_EXPERTS),
                config.get(ConfigKeys.MODEL_DIM),
                new Stn(config.get(ConfigKeys.STN_TUNE), config.get(ConfigKeys.STN_LAYERS),
                        config.get(ConfigKeys.STN_WARMUP_STEPS), config.get(ConfigKeys.STN_TRAIN_STEPS),
                        config.get(ConfigKeys.STN_VALID_STEPS)));
    }

    /** Optimizer steps of the run: every epoch of {@code stepsPerEpoch}, or {@link #maxSteps} if fewer. */
    public int totalSteps(int stepsPerEpoch) {
        int all = epochs * stepsPerEpoch;
        return maxSteps > 0 ? Math.min(maxSteps, all) : all;
    }

    /**
     * The learning-rate schedule: linear warm-up, then cosine decay.
     *
     * @param peak        {@code train.lr}
     * @param minFraction {@code train.minLrFraction}: the last step's rate over the peak
     * @param warmupSteps {@code train.warmupSteps}
     */
    public record Schedule(double peak, double minFraction, int warmupSteps) {
        /** The schedule for a run of {@code totalSteps}. */
        public LrSchedule over(int totalSteps) {
            return new LrSchedule(peak, minFraction, warmupSteps, totalSteps);
        }
    }

    /**
     * AdamW's settings.
     *
     * @param beta1       {@code train.beta1}
     * @param beta2       {@code train.beta2}
     * @param weightDecay {@code train.weightDecay}
     * @param clipNorm    {@code train.clipNorm} (0: no clipping)
     */
    public record Optimizer(double beta1, double beta2, double weightDecay, double clipNorm) {
        /** AdamW over {@code params}. */
        public AdamW adamW(Backend be, ParamStore params) {
            return new AdamW(be, params, beta1, beta2, 1e-8, weightDecay, clipNorm);
        }
    }

    /**
     * The Self-Tuning Network's settings that the trainer itself reads ({@link StnTuner} reads the
     * rest of its own).
     *
     * @param tune        {@code stn.tune}: the tuned hyperparameters (empty: off)
     * @param layers      {@code stn.layers}: the layers with a best-response
     * @param warmupSteps {@code stn.warmupSteps}
     * @param trainSteps  {@code stn.trainSteps}
     * @param validSteps  {@code stn.validSteps}
     */
    public record Stn(List<String> tune, List<String> layers, int warmupSteps, int trainSteps, int validSteps) {
        public boolean on() {
            return !tune.isEmpty();
        }
    }
}
