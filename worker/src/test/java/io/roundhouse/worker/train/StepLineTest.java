package io.roundhouse.worker.train;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * A step record written by {@link StepLine} reads back as the tree Jackson writes for the same
 * values rounded to float (NaN and infinities quoted, the extremes of double kept as doubles,
 * negative zero, nested arrays and objects), and the reused buffer starts clean at each record.
 */
class StepLineTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** What a record holds for {@code v}: the float nearest it, or beyond float's range the double. */
    private static Object written(double v) {
        float f = (float) v;
        return Float.isFinite(f) && (f != 0f || v == 0) ? (Object) f : (Object) v;
    }

    @Test
    void writesWhatJacksonWrites() throws Exception {
        double[] odd = {0.0, -0.0, 1e-300, Double.MIN_VALUE, Double.MAX_VALUE, 2.9E-4, 1.0 / 3, Double.NaN,
            Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY, 123456789.125};
        int[][] load = {{13, 80, 0}, {}, {7}};
        Map<String, Object> hyper = new LinkedHashMap<>();
        hyper.put("dropout.block", 0.097);
        Map<String, Object> hyperWritten = new LinkedHashMap<>();
        hyperWritten.put("dropout.block", 0.097f);
        hyperWritten.put("augment.shift", Double.NaN);
        hyper.put("augment.shift", Double.NaN);
        StepLine line = new StepLine();
        line.begin().field("type", "stale").field("step", 99).close();  // whatever a last record left
        for (double v : odd) {
            StepLine l = line.begin().field("type", "train").field("step", 7L).field("lr", v).field("odd", odd)
                    .field("expertLoad", load).openArray("balance");
            l.open(null).field("a", v).field("b", -v).close().open(null).field("a", 1.5).close();
            l.closeArray().open("phaseMs").field("embed", v).field("experts", 2.25).close().field("hyper", hyper)
                    .field("last", Long.MIN_VALUE);
            String written = line.end().toString();

            Map<String, Object> m = new LinkedHashMap<>();
            m.put("type", "train");
            m.put("step", 7L);
            m.put("lr", written(v));
            m.put("odd", java.util.Arrays.stream(odd).mapToObj(StepLineTest::written).toList());
            m.put("expertLoad", load);
            Map<String, Object> b0 = new LinkedHashMap<>();
            b0.put("a", written(v));
            b0.put("b", written(-v));
            m.put("balance", List.of(b0, Map.of("a", 1.5)));
            Map<String, Object> phases = new LinkedHashMap<>();
            phases.put("embed", written(v));
            phases.put("experts", 2.25);
            m.put("phaseMs", phases);
            m.put("hyper", hyperWritten);
            m.put("last", Long.MIN_VALUE);
            JsonNode expected = JSON.readTree(JSON.writeValueAsString(m));
            assertEquals(expected, JSON.readTree(written), "lr = " + v + ": " + written);
        }
    }
}
