package io.roundhouse.kernels;

/** Plain-loop double-precision references for every op's forward. Legend as in {@link Backend}. */
final class Ref {
    private Ref() {
    }

    /** y[n,out] = x[n,in]·w[in,out] + b. */
    static double[] linear(double[] x, double[] w, double[] b, int n, int in, int out) {
        double[] y = new double[n * out];
        for (int r = 0; r < n; r++) {
            for (int j = 0; j < out; j++) {
                double s = b == null ? 0 : b[j];
                for (int q = 0; q < in; q++) {
                    s += x[r * in + q] * w[q * out + j];
                }
                y[r * out + j] = s;
            }
        }
        return y;
    }

    static double[] activation(double[] a, int n, int f, Activation act) {
        double[] h = new double[n * f];
        for (int r = 0; r < n; r++) {
            for (int j = 0; j < f; j++) {
                if (act == Activation.GELU) {
                    double v = a[r * f + j];
                    h[r * f + j] = 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
                } else {
                    double g = a[r * 2 * f + j];
                    double u = a[r * 2 * f + f + j];
                    h[r * f + j] = g / (1 + Math.exp(-g)) * u;
                }
            }
        }
        return h;
    }

    /** The grouped expert FFN, one expert after another. */
    static double[] expertFfn(double[] x, double[] w1, double[] b1, double[] w2, double[] b2, int[] offsets,
                              int d, int f, Activation act) {
        int e = offsets.length - 1;
        int f1 = act.preWidth(f);
        double[] y = new double[offsets[e] * d];
        for (int ex = 0; ex < e; ex++) {
            int rows = offsets[ex + 1] - offsets[ex];
            double[] xe = slice(x, offsets[ex] * d, rows * d);
            double[] a = linear(xe, slice(w1, ex * d * f1, d * f1), b1 == null ? null : slice(b1, ex * f1, f1), rows, d, f1);
            double[] h = activation(a, rows, f, act);
            double[] ye = linear(h, slice(w2, ex * f * d, f * d), b2 == null ? null : slice(b2, ex * d, d), rows, f, d);
            System.arraycopy(ye, 0, y, offsets[ex] * d, ye.length);
        }
        return y;
    }

    static double[] slice(double[] v, int from, int n) {
        double[] s = new double[n];
        System.arraycopy(v, from, s, 0, n);
        return s;
    }

    /** LayerNorm (beta non-null) or RMSNorm (beta null). */
    static double[] norm(double[] x, double[] gamma, double[] beta, int n, int d, double eps) {
        double[] y = new double[n * d];
        for (int r = 0; r < n; r++) {
            double mu = 0;
            if (beta != null) {
                for (int j = 0; j < d; j++) {
                    mu += x[r * d + j];
                }
                mu /= d;
            }
            double var = 0;
            for (int j = 0; j < d; j++) {
                var += (x[r * d + j] - mu) * (x[r * d + j] - mu);
            }
            double rs = 1 / Math.sqrt(var / d + eps);
            for (int j = 0; j < d; j++) {
                y[r * d + j] = (x[r * d + j] - mu) * rs * gamma[j] + (beta == null ? 0 : beta[j]);
            }
        }
        return y;
    }

    static double[] softmax(double[] l, int n, int e) {
        double[] p = new double[n * e];
        for (int r = 0; r < n; r++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < e; j++) {
                max = Math.max(max, l[r * e + j]);
            }
            double s = 0;
            for (int j = 0; j < e; j++) {
                s += Math.exp(l[r * e + j] - max);
            }
            for (int j = 0; j < e; j++) {
                p[r * e + j] = Math.exp(l[r * e + j] - max) / s;
            }
        }
        return p;
    }

    static double[] logSumExp(double[] l, int n, int e) {
        double[] out = new double[n];
        for (int r = 0; r < n; r++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < e; j++) {
                max = Math.max(max, l[r * e + j]);
            }
            double s = 0;
            for (int j = 0; j < e; j++) {
                s += Math.exp(l[r * e + j] - max);
            }
            out[r] = max + Math.log(s);
        }
        return out;
    }

    /** Top-k indices by sorting (a different algorithm from the backend's k argmax passes). */
    static int[] topK(double[] l, int n, int e, int k) {
        int[] idx = new int[n * k];
        for (int r = 0; r < n; r++) {
            Integer[] order = new Integer[e];
            for (int j = 0; j < e; j++) {
                order[j] = j;
            }
            final int row = r;
            java.util.Arrays.sort(order, (a, b) -> {
                int c = Double.compare(l[row * e + b], l[row * e + a]);
                return c != 0 ? c : Integer.compare(a, b);
            });
            for (int s = 0; s < k; s++) {
                idx[r * k + s] = order[s];
            }
        }
        return idx;
    }

    /** Gate values for a fixed top-k selection. */
    static double[] gates(double[] l, int[] idx, int n, int e, int k, GateMode mode) {
        double[] p = softmax(l, n, e);
        double[] g = new double[n * k];
        for (int r = 0; r < n; r++) {
            double sumP = 0;
            double sumExp = 0;
            for (int s = 0; s < k; s++) {
                sumP += p[r * e + idx[r * k + s]];
                sumExp += Math.exp(l[r * e + idx[r * k + s]]);
            }
            for (int s = 0; s < k; s++) {
                int j = idx[r * k + s];
                g[r * k + s] = switch (mode) {
                    case SOFTMAX_TOPK -> p[r * e + j];
                    case SOFTMAX_TOPK_RENORM -> p[r * e + j] / sumP;
                    case TOPK_SOFTMAX -> Math.exp(l[r * e + j]) / sumExp;
                };
            }
        }
        return g;
    }

    /** y[n] = Σ_k g[n,k]·yp[row(n,k)] over kept copies. */
    static double[] sigmoid(double[] l) {
        double[] s = new double[l.length];
        for (int j = 0; j < l.length; j++) {
            s[j] = 1 / (1 + Math.exp(-l[j]));
        }
        return s;
    }

    /** The sigmoid router's choice: the K largest σ(l) + bias per row, ties to the lower index. */
    static int[] sigmoidTopK(double[] l, double[] bias, int n, int e, int k) {
        double[] s = sigmoid(l);
        double[] biased = new double[n * e];
        for (int j = 0; j < n * e; j++) {
            biased[j] = s[j] + bias[j % e];
        }
        return topK(biased, n, e, k);
    }

    /** The sigmoid router's gates: the chosen scores over their sum. */
    static double[] sigmoidGates(double[] l, int[] idx, int n, int e, int k) {
        double[] s = sigmoid(l);
        double[] g = new double[n * k];
        for (int r = 0; r < n; r++) {
            double sum = 0;
            for (int q = 0; q < k; q++) {
                sum += s[r * e + idx[r * k + q]];
            }
            for (int q = 0; q < k; q++) {
                g[r * k + q] = s[r * e + idx[r * k + q]] / sum;
            }
        }
        return g;
    }

    /** The scores normalised over every expert, σ(l)/Σσ(l) per row. */
    static double[] sigmoidShares(double[] l, int n, int e) {
        double[] s = sigmoid(l);
        for (int r = 0; r < n; r++) {
            double sum = 0;
            for (int j = 0; j < e; j++) {
                sum += s[r * e + j];
            }
            for (int j = 0; j < e; j++) {
                s[r * e + j] /= sum;
            }
        }
        return s;
    }

    static double[] unpermute(double[] yp, int[] copyRow, double[] gates, int n, int k, int d) {
        double[] y = new double[n * d];
        for (int r = 0; r < n; r++) {
            for (int s = 0; s < k; s++) {
                int row = copyRow[r * k + s];
                if (row < 0) {
                    continue;
                }
                double w = gates == null ? 1 : gates[r * k + s];
                for (int j = 0; j < d; j++) {
                    y[r * d + j] += w * yp[row * d + j];
                }
            }
        }
        return y;
    }

    static double[] crossEntropy(double[] logits, int[] labels, int n, int c) {
        double[] lse = logSumExp(logits, n, c);
        double[] loss = new double[n];
        for (int r = 0; r < n; r++) {
            loss[r] = lse[r] - logits[r * c + labels[r]];
        }
        return loss;
    }

    /** RoPE in plain loops: the pairs (i, i + dh/2) of each head rotated by pos·theta^(−2i/dh). */
    static double[] rope(double[] x, int n, int row, int dh, int period, int firstPos, double theta, boolean inverse) {
        double[] y = new double[x.length];
        int half = dh / 2;
        for (int r = 0; r < n; r++) {
            int pos = firstPos + r % period;
            for (int base = r * row; base < (r + 1) * row; base += dh) {
                for (int i = 0; i < half; i++) {
                    double angle = pos * Math.pow(theta, -2.0 * i / dh) * (inverse ? -1 : 1);
                    double a = x[base + i];
                    double b = x[base + i + half];
                    y[base + i] = a * Math.cos(angle) - b * Math.sin(angle);
                    y[base + i + half] = b * Math.cos(angle) + a * Math.sin(angle);
                }
            }
        }
        return y;
    }

    /**
     * Causal attention in plain loops, the full T×T score matrix per head; {@code lseOut} (when not
     * null) gets each [query, head]'s log-sum-exp. Dropout (a rate per query row) as the backends draw it.
     */
    static double[] attention(double[] q, double[] k, double[] v, int batch, int tq, int tk, int heads, int kvHeads,
                              int dh, double scale, double[] rates, long seed, long stream, long firstSequence,
                              double[] lseOut) {
        double[] out = new double[batch * tq * heads * dh];
        int group = heads / kvHeads;
        for (int b = 0; b < batch; b++) {
            for (int h = 0; h < heads; h++) {
                int kh = h / group;
                for (int i = 0; i < tq; i++) {
                    int last = tk - tq + i;
                    double[] s = new double[last + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j <= last; j++) {
                        double dot = 0;
                        for (int c = 0; c < dh; c++) {
                            dot += q[((b * tq + i) * heads + h) * dh + c] * k[((b * tk + j) * kvHeads + kh) * dh + c];
                        }
                        s[j] = dot * scale;
                        max = Math.max(max, s[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j <= last; j++) {
                        sum += Math.exp(s[j] - max);
                    }
                    if (lseOut != null) {
                        lseOut[(b * tq + i) * heads + h] = max + Math.log(sum);
                    }
                    for (int j = 0; j <= last; j++) {
                        double p = Math.exp(s[j] - max) / sum;
                        if (rates != null) {
                            float rate = (float) rates[b * tq + i];
                            long g = ((firstSequence + b) * heads + h) * (long) tq * tk + (long) i * tk + j;
                            p = Philox.uniform(seed, stream, g) >= rate ? p / (1 - rate) : 0;
                        }
                        for (int c = 0; c < dh; c++) {
                            out[((b * tq + i) * heads + h) * dh + c] += p * v[((b * tk + j) * kvHeads + kh) * dh + c];
                        }
                    }
                }
            }
        }
        return out;
    }

    static double[] sigmoidGate(double[] x, double[] g) {
        double[] y = new double[x.length];
        for (int j = 0; j < x.length; j++) {
            y[j] = x[j] / (1 + Math.exp(-g[j]));
        }
        return y;
    }

    /** Patches by the definition: for each image, patch, channel and pixel of the patch, in that order. */
    static double[] patches(double[] x, int images, int channels, int side, int patch) {
        int perSide = side / patch;
        double[] y = new double[x.length];
        int at = 0;
        for (int g = 0; g < images; g++) {
            for (int py = 0; py < perSide; py++) {
                for (int px = 0; px < perSide; px++) {
                    for (int ch = 0; ch < channels; ch++) {
                        for (int dy = 0; dy < patch; dy++) {
                            for (int dx = 0; dx < patch; dx++) {
                                int row = py * patch + dy;
                                int col = px * patch + dx;
                                y[at++] = x[((g * channels + ch) * side + row) * side + col];
                            }
                        }
                    }
                }
            }
        }
        return y;
    }

    /** x[G·A, B] → y[G·B, A]. */
    static double[] transposeGroups(double[] x, int groups, int a, int b) {
        double[] y = new double[x.length];
        for (int g = 0; g < groups; g++) {
            for (int i = 0; i < a; i++) {
                for (int j = 0; j < b; j++) {
                    y[(g * b + j) * a + i] = x[(g * a + i) * b + j];
                }
            }
        }
        return y;
    }

    /** y[G, D] = the mean of each group's P rows of x[G·P, D]. */
    static double[] meanGroups(double[] x, int groups, int p, int d) {
        double[] y = new double[groups * d];
        for (int g = 0; g < groups; g++) {
            for (int r = 0; r < p; r++) {
                for (int j = 0; j < d; j++) {
                    y[g * d + j] += x[(g * p + r) * d + j] / p;
                }
            }
        }
        return y;
    }
}
