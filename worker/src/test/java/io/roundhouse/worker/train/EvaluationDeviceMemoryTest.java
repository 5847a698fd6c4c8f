package io.roundhouse.worker.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.roundhouse.kernels.Activation;
import io.roundhouse.kernels.GateMode;
import io.roundhouse.kernels.Precision;
import io.roundhouse.kernels.cuda.CudaBackend;
import io.roundhouse.kernels.cuda.LaunchCheckDevice;
import io.roundhouse.worker.data.BatchSource;
import io.roundhouse.worker.data.FloatDataset;
import io.roundhouse.worker.model.ModelSpec;
import io.roundhouse.worker.model.MoeClassifier;
import io.roundhouse.worker.model.NormKind;
import io.roundhouse.worker.model.StepStats;
import io.roundhouse.worker.model.StnSpec;
import io.roundhouse.worker.parallel.WorkerGroup;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * On the CUDA backend (over the launch checker, no GPU: it counts the device memory asked for),
 * an evaluation pass asks for no device memory once the first has run: the batch source is the
 * caller's, made once, and the model's evaluation forwards reuse their buffers. The device's arena
 * frees nothing before close, so memory asked for per pass would grow with every evaluation of a run.
 */
class EvaluationDeviceMemoryTest {
    @Test
    void evaluationsAfterTheFirstAskForNoDeviceMemory() {
        LaunchCheckDevice dev = new LaunchCheckDevice(Path.of("../kernels/src/main/cuda"));
        ModelSpec spec = new ModelSpec(12, 4, 8, 2, 4, 2, 6, Activation.GELU, NormKind.LAYERNORM,
                GateMode.SOFTMAX_TOPK, 1.25, 0.1, 0.1, 0.01, 0.001, 0.1, StnSpec.NONE, Precision.FP32);
        int evalBatch = 16;
        // 50 examples in batches of 16: the last batch is shorter, so row counts differ within a pass
        FloatDataset set = new FloatDataset("test", new float[50 * 12], new int[50], 12, 4);
        try (CudaBackend cuda = dev.backend()) {
            MoeClassifier model = MoeClassifier.local(cuda, spec, 11, evalBatch);
            WorkerGroup group = WorkerGroup.single(spec.experts());
            BatchSource batches = set.batches(cuda, Evaluator.maxRows(set, evalBatch, 1, false), 3);
            StepStats stats = new StepStats(spec.blocks(), spec.experts());
            Evaluation.of(model, group, batches, evalBatch, 0, stats);
            long first = dev.allocatedBytes();
            assertTrue(first > 0, "the checker counts the model's device memory");
            for (int pass = 1; pass <= 3; pass++) {
                Evaluation.of(model, group, batches, evalBatch, pass, stats);
                assertEquals(first, dev.allocatedBytes(), "device memory after evaluation " + (pass + 1));
            }
        }
        assertEquals("[]", dev.problems.toString(), String.join("\n", dev.problems));
    }
}
