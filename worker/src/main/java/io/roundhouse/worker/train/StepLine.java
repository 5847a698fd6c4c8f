package io.roundhouse.worker.train;

/**
 * A {@code train} record written as one JSON line into a buffer that is reused from step to step,
 * so a steady-state step's record allocates nothing: numbers are appended as text directly, at
 * float precision ({@link Float#toString}'s shortest form, up to 9 significant digits: JDK 17's
 * {@link Double#toString} allocates for most doubles, its float conversion does not), and as
 * doubles only beyond float's range; NaN and the infinities are quoted, as Jackson quotes them.
 * Names are plain identifiers and are not escaped. The same record through
 * {@link MetricsWriter#toJson} with every number rounded to float parses to the same tree (a test
 * pins it).
 */
final class StepLine {
    private final StringBuilder sb = new StringBuilder(4096);
    private boolean first;

    /** Starts a new object, discarding the last one. */
    StepLine begin() {
        sb.setLength(0);
        sb.append('{');
        first = true;
        return this;
    }

    /** The finished line (without its newline), valid until the next {@link #begin}. */
    CharSequence end() {
        sb.append('}');
        return sb;
    }

    private void name(String name) {
        if (!first) {
            sb.append(',');
        }
        first = false;
        sb.append('"').append(name).append("\":");
    }

    StepLine field(String name, String value) {
        name(name);
        sb.append('"').append(value).append('"');
        return this;
    }

    StepLine field(String name, long value) {
        name(name);
        sb.append(value);
        return this;
    }

    StepLine field(String name, double value) {
        name(name);
        number(value);
        return this;
    }

    StepLine field(String name, double[] values) {
        name(name);
        sb.append('[');
        for (int i = 0; i < values.length; i++) {
            if (i > 0) {
                sb.append(',');
            }
            number(values[i]);
        }
        sb.append(']');
        return this;
    }

    StepLine field(String name, int[][] values) {
        name(name);
        sb.append('[');
        for (int i = 0; i < values.length; i++) {
            if (i > 0) {
                sb.append(',');
            }
            sb.append('[');
            for (int j = 0; j < values[i].length; j++) {
                if (j > 0) {
                    sb.append(',');
                }
                sb.append(values[i][j]);
            }
            sb.append(']');
        }
        sb.append(']');
        return this;
    }

    /** Opens a nested object under {@code name} (or, with a null name, as an array element); close with {@link #close}. */
    StepLine open(String name) {
        if (name != null) {
            name(name);
        } else if (!first) {
            sb.append(',');
        }
        sb.append('{');
        first = true;
        return this;
    }

    /** Opens an array under {@code name}; its elements are objects ({@link #open} with a null name). */
    StepLine openArray(String name) {
        name(name);
        sb.append('[');
        first = true;
        return this;
    }

    StepLine close() {
        sb.append('}');
        first = false;
        return this;
    }

    StepLine closeArray() {
        sb.append(']');
        first = false;
        return this;
    }

    private void number(double v) {
        float f = (float) v;
        if (Double.isNaN(v) || Double.isInfinite(v)) {
            sb.append('"').append(v).append('"');
        } else if (Float.isFinite(f) && (f != 0f || v == 0)) {
            sb.append(f);
        } else {
            sb.append(v);  // beyond float's range: as a double
        }
    }

    /** A flat object of numbers (a Self-Tuning Network's hyperparameters by name). */
    StepLine field(String name, java.util.Map<String, ?> numbers) {
        name(name);
        sb.append('{');
        boolean firstEntry = true;
        for (java.util.Map.Entry<String, ?> e : numbers.entrySet()) {
            if (!firstEntry) {
                sb.append(',');
            }
            firstEntry = false;
            sb.append('"').append(e.getKey()).append("\":");
            number(((Number) e.getValue()).doubleValue());
        }
        sb.append('}');
        return this;
    }
}
