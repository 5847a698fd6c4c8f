package io.roundhouse.worker.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigDecimal;
import java.util.Locale;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** {@link Decimals} writes what {@link String#format} with {@link Locale#ROOT} writes (ties aside). */
class DecimalsTest {
    private static final double[] EDGES = {0, -0.0, 0.5, 1.5, 2.5, -2.5, 0.125, 9.99995, 9.9996, 99_999.5, 1e-300,
        123_456_789.49, -1234.5678, 1e14, 2e15, 1e300, 6.0221e23, Double.MIN_VALUE, Double.MAX_VALUE, Double.NaN,
        Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY, 0.00099996, 1.65e-3, 3e-4, 1.0, 10.0, 100.0};

    @Test
    void edges() {
        for (double v : EDGES) {
            check(v);
        }
    }

    @Test
    void randomValuesOfEveryMagnitude() {
        SplittableRandom r = new SplittableRandom(19);
        for (int i = 0; i < 20_000; i++) {
            double v = (r.nextBoolean() ? 1 : -1) * r.nextDouble() * Math.pow(10, r.nextInt(-8, 14));
            check(v);
        }
    }

    @Test
    void zeroPaddedDigits() {
        assertEquals("05", Decimals.digits(new StringBuilder(), 5, 2).toString());
        assertEquals("59", Decimals.digits(new StringBuilder(), 59, 2).toString());
        assertEquals("123", Decimals.digits(new StringBuilder(), 123, 2).toString());
        assertEquals("0000000000", Decimals.digits(new StringBuilder(), 0, 10).toString());
    }

    /**
     * Where {@link Decimals} computes the figure itself ({@code fast}) it must be what String.format
     * writes for the double or for the double's exact value: those two differ only at ties in the
     * last place (the former rounds {@link Double#toString}'s digits), where either is a rounding
     * of the value. Elsewhere it is String.format's.
     */
    private static void assertFormats(String format, double v, boolean fast, String got) {
        String ofDouble = String.format(Locale.ROOT, format, v);
        String ofExact = fast && v != 0 ? String.format(Locale.ROOT, format, new BigDecimal(v)) : ofDouble;
        assertTrue(got.equals(ofDouble) || got.equals(ofExact), format + " of " + v + ": " + got + ", expected "
                + ofDouble + (ofExact.equals(ofDouble) ? "" : " or " + ofExact));
    }

    private static void check(double v) {
        double a = Math.abs(v);
        boolean fixedFast = a < 1e15;
        boolean scientificFast = a < 1e300 && a > 1e-300;
        for (int d = 0; d <= 4; d++) {
            assertFormats("%." + d + "f", v, fixedFast, Decimals.fixed(new StringBuilder(), v, d).toString());
        }
        assertFormats("%,.0f", v, fixedFast, Decimals.grouped(new StringBuilder(), v).toString());
        for (int d = 1; d <= 3; d++) {
            assertFormats("%." + d + "e", v, scientificFast, Decimals.scientific(new StringBuilder(), v, d).toString());
        }
    }
}
