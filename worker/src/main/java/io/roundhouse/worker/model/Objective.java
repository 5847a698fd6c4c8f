package io.roundhouse.worker.model;

import io.roundhouse.worker.report.Decimals;
import java.util.Locale;

/** What a model's figure of merit is: the classifier's accuracy, or a byte-level model's bits per byte. */
public enum Objective {
    /** Classes: top-1 accuracy. */
    ACCURACY,
    /** Next byte: cross-entropy in bits per byte ({@code nats / ln 2}), the standard figure for byte-level models. */
    BITS_PER_BYTE;

    private static final double LN2 = Math.log(2);

    /** The figure for a mean cross-entropy (nats) and an accuracy, as the console shows it. */
    public String format(double crossEntropy, double accuracy) {
        return appendTo(new StringBuilder(), crossEntropy, accuracy).toString();
    }

    /** {@link #format} appended to {@code sb} (a progress line's reused buffer), allocating nothing. */
    public StringBuilder appendTo(StringBuilder sb, double crossEntropy, double accuracy) {
        return this == ACCURACY ? Decimals.fixed(sb.append("acc "), 100 * accuracy, 1).append('%')
                : Decimals.fixed(sb, crossEntropy / LN2, 3).append(" bits/byte");
    }

    /** The figure an evaluation reports (more digits). */
    public String formatEval(double crossEntropy, double accuracy) {
        return this == ACCURACY ? String.format(Locale.ROOT, "acc %.2f%%", 100 * accuracy)
                : String.format(Locale.ROOT, "%.4f bits/byte", crossEntropy / LN2);
    }

    /** The figure as a number (accuracy, or bits per byte). */
    public double value(double crossEntropy, double accuracy) {
        return this == ACCURACY ? accuracy : crossEntropy / LN2;
    }
}
