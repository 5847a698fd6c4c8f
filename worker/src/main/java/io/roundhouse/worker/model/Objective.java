package io.roundhouse.worker.model;

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
        return this == ACCURACY ? String.format(Locale.ROOT, "acc %.1f%%", 100 * accuracy)
                : String.format(Locale.ROOT, "%.3f bits/byte", crossEntropy / LN2);
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
