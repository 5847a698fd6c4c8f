package io.roundhouse.worker.report;

import java.util.Locale;

/**
 * Numbers appended to a {@link StringBuilder} as {@link String#format} with {@link Locale#ROOT}
 * writes them ({@code %.Nf}, {@code %,.0f}, {@code %.Ne}, {@code %02d}) but without its
 * allocation: a training step's progress line is built in a reused buffer. Rounding is half up;
 * at a tie in the last place it may go the other way from String.format (which rounds
 * {@link Double#toString}'s digits, not the double's exact value). NaN, the infinities
 * and magnitudes beyond the fast path (10^15 and more, or beyond 10^±300 in {@code %e}) go through
 * {@code String.format}.
 */
public final class Decimals {
    private static final long[] POW10 = {1L, 10L, 100L, 1_000L, 10_000L, 100_000L, 1_000_000L, 10_000_000L,
        100_000_000L, 1_000_000_000L};
    private static final double FAST_LIMIT = 1e15;

    private Decimals() {
    }

    /** {@code %.<decimals>f} (0 ≤ decimals ≤ 9). */
    public static StringBuilder fixed(StringBuilder sb, double v, int decimals) {
        double a = Math.abs(v);
        if (!(a < FAST_LIMIT)) {
            return sb.append(String.format(Locale.ROOT, "%." + decimals + "f", v));
        }
        // The whole part and the fraction apart (both exact), so only the fraction is scaled.
        long whole = (long) a;
        long fraction = Math.round((a - whole) * POW10[decimals]);
        if (fraction == POW10[decimals]) {
            whole++;
            fraction = 0;
        }
        if (v < 0 || (v == 0 && 1 / v < 0)) {
            sb.append('-');
        }
        sb.append(whole);
        if (decimals > 0) {
            sb.append('.');
            digits(sb, fraction, decimals);
        }
        return sb;
    }

    /** {@code %,.0f}: rounded to a whole number, thousands separated by commas. */
    public static StringBuilder grouped(StringBuilder sb, double v) {
        if (!(Math.abs(v) < FAST_LIMIT)) {
            return sb.append(String.format(Locale.ROOT, "%,.0f", v));
        }
        long r = Math.round(Math.abs(v));
        if (v < 0 || (v == 0 && 1 / v < 0)) {
            sb.append('-');
        }
        long group = 1;
        while (group <= r / 1000) {
            group *= 1000;
        }
        sb.append(r / group);
        for (group /= 1000; group > 0; group /= 1000) {
            sb.append(',');
            digits(sb, r / group % 1000, 3);
        }
        return sb;
    }

    /** {@code %.<decimals>e}: a mantissa in [1, 10), then {@code e}, the sign and at least two exponent digits. */
    public static StringBuilder scientific(StringBuilder sb, double v, int decimals) {
        double a = Math.abs(v);
        if (!(a < 1e300) || (a != 0 && a < 1e-300)) {
            return sb.append(String.format(Locale.ROOT, "%." + decimals + "e", v));
        }
        int exp = a == 0 ? 0 : (int) Math.floor(Math.log10(a));
        double mantissa = a == 0 ? 0 : a / Math.pow(10, exp);
        long r = Math.round(mantissa * POW10[decimals]);
        if (r < POW10[decimals] && a != 0) {  // log10 rounded up: the mantissa fell under 1
            exp--;
            r = Math.round(a / Math.pow(10, exp) * POW10[decimals]);
        }
        if (r >= 10 * POW10[decimals]) {      // rounding carried into another digit: 9.996 → 10.00
            exp++;
            r = Math.round(a / Math.pow(10, exp) * POW10[decimals]);
        }
        if (v < 0 || (v == 0 && 1 / v < 0)) {
            sb.append('-');
        }
        sb.append(r / POW10[decimals]);
        if (decimals > 0) {
            sb.append('.');
            digits(sb, r % POW10[decimals], decimals);
        }
        sb.append('e').append(exp < 0 ? '-' : '+');
        return digits(sb, Math.abs(exp), Math.abs(exp) < 100 ? 2 : 3);
    }

    /** {@code value} (≥ 0) in exactly {@code width} digits, zero-padded ({@code %02d} for width 2). */
    public static StringBuilder digits(StringBuilder sb, long value, int width) {
        for (int w = width - 1; w > 0 && value < POW10[Math.min(w, 9)]; w--) {
            sb.append('0');
        }
        return sb.append(value);
    }
}
