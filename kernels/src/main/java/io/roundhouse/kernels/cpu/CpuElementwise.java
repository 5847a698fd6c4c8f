package io.roundhouse.kernels.cpu;

import static io.roundhouse.kernels.cpu.CpuBackend.f;
import static io.roundhouse.kernels.cpu.CpuBackend.o;

import io.roundhouse.kernels.Check;
import io.roundhouse.kernels.Philox;
import io.roundhouse.kernels.Tensor;

/**
 * The CPU backend's element-wise ops: dropout (one rate, or a rate per row), the router's
 * multiplicative jitter (masks and noise from Philox, never stored), and the products and row
 * scalings the Self-Tuning Network layers are built from.
 */
public final class CpuElementwise {
    private CpuElementwise() {
    }

    /** Forward and backward are the same masked scaling: out = in · keep/(1−p). */
    static void dropout(String op, Tensor out, Tensor in, float p, long seed, long stream, long firstElement) {
        Check.dropout(op, out, in, p, firstElement);
        float[] oa = f(out);
        float[] ia = f(in);
        int oo = o(out);
        int io = o(in);
        int n = in.size();
        if (p == 0f) {
            System.arraycopy(ia, io, oa, oo, n);
            return;
        }
        float scale = 1f / (1f - p);
        int[] words = Philox.scratch();
        long block = -1;
        for (int j = 0; j < n; j++) {
            long g = firstElement + j;
            if ((g >>> 2) != block) {
                block = g >>> 2;
                Philox.block4(seed, stream, block, words);
            }
            oa[oo + j] = Philox.toUnit(words[(int) (g & 3)]) >= p ? ia[io + j] * scale : 0f;
        }
    }



    static void dropoutRows(String op, Tensor out, Tensor in, Tensor rates, long seed, long stream,
                                    long firstElement) {
        Check.dropoutRows(op, out, in, rates, firstElement);
        int n = in.dim(0);
        int cols = in.rowSize();
        float[] oa = f(out);
        float[] ia = f(in);
        float[] ra = f(rates);
        int oo = o(out);
        int io = o(in);
        int[] words = Philox.scratch();
        long block = -1;
        for (int r = 0; r < n; r++) {
            float p = ra[o(rates) + r];
            Check.rowRate(op, r, p);
            float scale = 1f / (1f - p);
            for (int c = 0; c < cols; c++) {
                int j = r * cols + c;
                long g = firstElement + j;
                if ((g >>> 2) != block) {
                    block = g >>> 2;
                    Philox.block4(seed, stream, block, words);
                }
                oa[oo + j] = Philox.toUnit(words[(int) (g & 3)]) >= p ? ia[io + j] * scale : 0f;
            }
        }
    }

    static void jitter(Tensor y, Tensor x, Tensor amplitude, long seed, long stream, long firstElement) {
        Check.jitter(y, x, amplitude, firstElement);
        int n = x.dim(0);
        int cols = x.rowSize();
        float[] ya = f(y);
        float[] xa = f(x);
        float[] aa = f(amplitude);
        int[] words = Philox.scratch();
        long block = -1;
        for (int r = 0; r < n; r++) {
            float a = aa[o(amplitude) + r];
            for (int c = 0; c < cols; c++) {
                int j = r * cols + c;
                long g = firstElement + j;
                if ((g >>> 2) != block) {
                    block = g >>> 2;
                    Philox.block4(seed, stream, block, words);
                }
                float u = Philox.toUnit(words[(int) (g & 3)]);
                ya[o(y) + j] = xa[o(x) + j] * (1f + a * (2f * u - 1f));
            }
        }
    }



    static void multiply(String op, Tensor y, Tensor a, Tensor b, boolean add) {
        boolean row = Check.multiply(op, y, a, b);
        float[] ya = f(y);
        float[] aa = f(a);
        float[] ba = f(b);
        int yo = o(y);
        int ao = o(a);
        int bo = o(b);
        int n = a.size();
        if (!row) {
            if (add) {
                for (int j = 0; j < n; j++) {
                    ya[yo + j] += aa[ao + j] * ba[bo + j];
                }
            } else {
                for (int j = 0; j < n; j++) {
                    ya[yo + j] = aa[ao + j] * ba[bo + j];
                }
            }
            return;
        }
        int cols = a.rowSize();
        for (int r = 0, rows = n / cols; r < rows; r++) {
            int yr = yo + r * cols;
            int ar = ao + r * cols;
            if (add) {
                for (int c = 0; c < cols; c++) {
                    ya[yr + c] += aa[ar + c] * ba[bo + c];
                }
            } else {
                for (int c = 0; c < cols; c++) {
                    ya[yr + c] = aa[ar + c] * ba[bo + c];
                }
            }
        }
    }

    static void sumRowProducts(Tensor acc, Tensor a, Tensor b) {
        int cols = Check.sumRowProducts(acc, a, b);
        float[] ca = f(acc);
        float[] aa = f(a);
        float[] ba = f(b);
        int co = o(acc);
        for (int r = 0, rows = a.dim(0); r < rows; r++) {
            int ar = o(a) + r * cols;
            int br = o(b) + r * cols;
            for (int c = 0; c < cols; c++) {
                ca[co + c] += aa[ar + c] * ba[br + c];
            }
        }
    }

    static void scaleRows(Tensor t, Tensor s) {
        int n = t.dim(0);
        int cols = t.rowSize();
        Check.shape("scaleRows", s, n);
        float[] ta = f(t);
        float[] sa = f(s);
        for (int r = 0; r < n; r++) {
            float v = sa[o(s) + r];
            int tr = o(t) + r * cols;
            for (int c = 0; c < cols; c++) {
                ta[tr + c] *= v;
            }
        }
    }
}
