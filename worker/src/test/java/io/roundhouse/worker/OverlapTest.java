package io.roundhouse.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.roundhouse.worker.train.Trainer;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code comms.overlap}: an MoE layer's started exchanges (on: the hosted experts computed one by
 * one as their rows arrive, forward and the input half of backward, each in a call of its own, and
 * without an STN expert response each expert's results sent back as soon as computed; the
 * experts' weight gradients computed while the input gradients travel back, the shared experts
 * while their rows travel) and
 * also the dense gradients' buckets summed on a comms thread while backward goes on below their
 * block (all) give the bits of the serial schedule (off), where every exchange finishes before the
 * next computation: the same
 * parameter digest on and off, for the classifier with pre-gating, shared experts and a Self-Tuning
 * Network whose expert response has exchanges of its own, without it (the combine streams), with
 * 3 experts on 2 workers (one pipelines, one does not), with expert replicas (W = 3 over 2
 * experts), and for the language model with shared experts.
 */
@Timeout(300)
class OverlapTest {
    @TempDir
    Path tmp;

    private void sameBitsOnAndOff(Map<String, String> config, int w, String tag) throws Exception {
        List<Trainer.Result> serial = null;
        for (String overlap : List.of("off", "on", "all")) {
            Map<String, String> m = new HashMap<>(config);
            m.put("comms.overlap", overlap);
            m.put("output.dir", tmp.resolve(tag + "-" + overlap).toString());
            List<Trainer.Result> r = TrainerGroups.train(m, w, tmp.resolve("aeron"), tag + overlap);
            if (serial == null) {
                serial = r;
                continue;
            }
            assertEquals(serial.get(0).parameterDigest(), r.get(0).parameterDigest(),
                    tag + ": comms.overlap=" + overlap + "'s parameters against the serial schedule's");
            assertEquals(serial.get(0).steps(), r.get(0).steps());
        }
    }

    private Map<String, String> classifier(int experts) throws Exception {
        Map<String, String> m = new HashMap<>();
        m.put("data.dir", IdxFixtures.write(tmp.resolve("data"), 300, 40, 3).toString());
        m.put("data.validationExamples", "40");
        m.put("model.dim", "16");
        m.put("model.blocks", "2");
        m.put("model.experts", String.valueOf(experts));
        m.put("model.expertHidden", "12");
        m.put("model.sharedExperts", "1");
        m.put("model.preGating", "on");
        m.put("stn.tune", "dropout.block");
        m.put("stn.layers", "embed,router,experts,head");
        m.put("stn.warmupSteps", "4");
        m.put("stn.trainSteps", "3");
        m.put("train.maxSteps", "14");
        m.put("train.batchSize", "30");
        m.put("train.evalBatchSize", "20");
        m.put("checkpoint.everySteps", "0");
        m.put("backend", "cpu");
        return m;
    }

    @Test
    void classifierWithSharedExpertsPreGatingAndAnStnKeepsItsBits() throws Exception {
        sameBitsOnAndOff(classifier(4), 2, "classifier");
    }

    @Test
    void classifierWhoseCombineStreamsKeepsItsBits() throws Exception {
        // Without the STN's expert response the forward's combine leaves expert by expert.
        Map<String, String> m = classifier(4);
        m.remove("stn.tune");
        m.remove("stn.layers");
        m.remove("stn.warmupSteps");
        m.remove("stn.trainSteps");
        sameBitsOnAndOff(m, 2, "streamed");
    }

    @Test
    void unevenPlacementKeepsItsBits() throws Exception {
        // 3 experts on 2 workers: worker 0 hosts two and pipelines, worker 1 hosts one and does not.
        sameBitsOnAndOff(classifier(3), 2, "uneven");
    }

    @Test
    void expertReplicasKeepTheirBits() throws Exception {
        sameBitsOnAndOff(classifier(2), 3, "replicas");
    }

    @Test
    void languageModelWithSharedExpertsKeepsItsBits() throws Exception {
        Map<String, String> m = LmFixtures.config(LmFixtures.corpus(tmp.resolve("text.txt"), 3, 20_000, 8),
                tmp.resolve("lm"), 10);
        m.put("model.sharedExperts", "1");
        m.put("checkpoint.everySteps", "0");
        sameBitsOnAndOff(m, 2, "lm");
    }
}
