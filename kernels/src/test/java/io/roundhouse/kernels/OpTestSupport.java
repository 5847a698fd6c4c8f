package io.roundhouse.kernels;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.roundhouse.kernels.cpu.CpuBackend;
import java.util.Random;
import java.util.function.Function;

/**
 * Helpers for op tests: random tensors, reading back as double, central finite differences in
 * double on a plain-loop reference, and a relative-error comparison that reports the worst element.
 */
final class OpTestSupport {
    final Backend be = new CpuBackend();
    final Random rnd;

    OpTestSupport(long seed) {
        rnd = new Random(seed);
    }

    double[] randn(int n, double scale) {
        double[] v = new double[n];
        for (int j = 0; j < n; j++) {
            v[j] = rnd.nextGaussian() * scale;
        }
        return v;
    }

    Tensor tensor(String name, double[] v, int... shape) {
        Tensor t = be.allocate(name, DType.FLOAT32, shape);
        be.write(t, toFloat(v));
        return t;
    }

    Tensor ints(String name, int[] v, int... shape) {
        Tensor t = be.allocate(name, DType.INT32, shape);
        be.write(t, v);
        return t;
    }

    /** A tensor filled with NaN, so an element an op forgets to write fails the comparison. */
    Tensor poisoned(String name, int... shape) {
        Tensor t = be.allocate(name, DType.FLOAT32, shape);
        be.fill(t, Float.NaN);
        return t;
    }

    double[] read(Tensor t) {
        float[] f = new float[t.size()];
        be.read(t, f);
        double[] d = new double[f.length];
        for (int j = 0; j < f.length; j++) {
            d[j] = f[j];
        }
        return d;
    }

    int[] readInts(Tensor t) {
        int[] v = new int[t.size()];
        be.read(t, v);
        return v;
    }

    static float[] toFloat(double[] v) {
        float[] f = new float[v.length];
        for (int j = 0; j < v.length; j++) {
            f[j] = (float) v[j];
        }
        return f;
    }

    /**
     * An expert-FFN case: {@code counts[e]} rows for expert e, random inputs, weights, biases and
     * output gradient (rounded to float), from a generator seeded by the shape.
     */
    static final class FfnCase {
        final OpTestSupport s;
        final int e;
        final int d;
        final int f;
        final int f1;
        final int m;
        final int[] offsets;
        final double[] x;
        final double[] w1;
        final double[] b1;
        final double[] w2;
        final double[] b2;
        final double[] dy;

        FfnCase(Activation act, int[] counts, int d, int f, long salt) {
            this.e = counts.length;
            this.d = d;
            this.f = f;
            this.f1 = act.preWidth(f);
            this.offsets = new int[e + 1];
            for (int j = 0; j < e; j++) {
                offsets[j + 1] = offsets[j] + counts[j];
            }
            this.m = offsets[e];
            this.s = new OpTestSupport(m * salt + d);
            this.x = rounded(s.randn(m * d, 1));
            this.w1 = rounded(s.randn(e * d * f1, 0.4));
            this.b1 = rounded(s.randn(e * f1, 0.2));
            this.w2 = rounded(s.randn(e * f * d, 0.4));
            this.b2 = rounded(s.randn(e * d, 0.2));
            this.dy = rounded(s.randn(m * d, 1));
        }
    }

    /** The input rounded to float, so the reference sees exactly what the backend saw. */
    static double[] rounded(double[] v) {
        double[] r = new double[v.length];
        for (int j = 0; j < v.length; j++) {
            r[j] = (float) v[j];
        }
        return r;
    }

    /**
     * d/dx of {@code Σ dy·f(x)} by central differences in double (h = 1e-6).
     */
    static double[] numericGrad(Function<double[], double[]> f, double[] x, double[] dy) {
        double[] g = new double[x.length];
        double h = 1e-6;
        for (int j = 0; j < x.length; j++) {
            double keep = x[j];
            x[j] = keep + h;
            double plus = dot(f.apply(x), dy);
            x[j] = keep - h;
            double minus = dot(f.apply(x), dy);
            x[j] = keep;
            g[j] = (plus - minus) / (2 * h);
        }
        return g;
    }

    static double dot(double[] a, double[] b) {
        double s = 0;
        for (int j = 0; j < a.length; j++) {
            s += a[j] * b[j];
        }
        return s;
    }

    /**
     * Asserts max|got − want| ≤ tol · max(1, max|want|) and prints the worst difference.
     */
    static void assertClose(String what, double[] want, double[] got, double tol) {
        assertTrue(want.length == got.length, what + ": length " + got.length + " != " + want.length);
        double worst = 0;
        int at = -1;
        double scale = 1;
        for (double w : want) {
            scale = Math.max(scale, Math.abs(w));
        }
        for (int j = 0; j < want.length; j++) {
            double d = Math.abs(want[j] - got[j]);
            if (Double.isNaN(got[j]) || Double.isNaN(want[j])) {
                d = Double.POSITIVE_INFINITY;
            }
            if (d > worst || at < 0) {
                worst = d;
                at = j;
            }
        }
        double rel = worst / scale;
        System.out.printf("%-60s worst |diff| %.3e (relative %.3e) at %d%n", what, worst, rel, at);
        assertTrue(rel <= tol, what + ": worst difference " + worst + " at element " + at + " (want "
                + (at >= 0 ? want[at] : 0) + ", got " + (at >= 0 ? got[at] : 0) + "), relative " + rel + " > " + tol);
    }
}
