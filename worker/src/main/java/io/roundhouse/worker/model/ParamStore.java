package io.roundhouse.worker.model;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.DType;
import io.roundhouse.kernels.Tensor;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Owns every parameter of a model, in creation order (which fixes the order of gradient
 * reductions and checkpoints). Initial values come from one seeded generator, so a seed fixes
 * the model.
 */
public final class ParamStore {
    private final Backend be;
    private final SplittableRandom rnd;
    private final SplittableRandom aside;
    private final List<Param> params = new ArrayList<>();

    public ParamStore(Backend be, long seed) {
        this.be = be;
        this.rnd = new SplittableRandom(seed);
        this.aside = new SplittableRandom(seed ^ 0x53544E5F52455350L);
    }

    /** A parameter drawn from N(0, std²). */
    public Param normal(String name, double std, boolean decay, int... shape) {
        return normal(rnd, name, std, decay, shape);
    }

    /**
     * A parameter drawn from N(0, std²) by a second generator of the same seed: parameters added
     * to a model this way (a Self-Tuning Network's responses) leave every other one as it was.
     */
    public Param normalAside(String name, double std, boolean decay, int... shape) {
        return normal(aside, name, std, decay, shape);
    }

    private Param normal(SplittableRandom from, String name, double std, boolean decay, int... shape) {
        Param p = create(name, decay, shape);
        float[] v = new float[p.value().size()];
        for (int j = 0; j < v.length; j++) {
            v[j] = (float) (gaussian(from) * std);
        }
        be.write(p.value(), v);
        return p;
    }

    /**
     * The slice {@code [first, first + count)} along the first axis of a parameter of
     * {@code fullShape} drawn from N(0, std²): the generator draws the whole tensor, so a worker
     * holding some experts gets exactly the values one worker holding all of them gets, and the
     * parameters created after it are the same too. The parameter is an expert's (see
     * {@link Param#expert()}).
     */
    public Param normalSlice(String name, double std, boolean decay, int first, int count, int... fullShape) {
        return normalSlice(rnd, name, std, decay, first, count, fullShape);
    }

    /** {@link #normalSlice} from the second generator (see {@link #normalAside}). */
    public Param normalSliceAside(String name, double std, boolean decay, int first, int count, int... fullShape) {
        return normalSlice(aside, name, std, decay, first, count, fullShape);
    }

    private Param normalSlice(SplittableRandom from, String name, double std, boolean decay, int first, int count,
                              int... fullShape) {
        if (first < 0 || count < 1 || first + count > fullShape[0]) {
            throw new IllegalArgumentException(name + ": slice [" + first + ", " + (first + count) + ") outside [0, "
                    + fullShape[0] + ")");
        }
        int[] shape = fullShape.clone();
        shape[0] = count;
        Param p = create(name, decay, true, true, shape);
        int per = p.value().size() / count;
        float[] v = new float[p.value().size()];
        long skip = (long) first * per;
        for (long j = 0; j < skip; j++) {
            gaussian(from);
        }
        for (int j = 0; j < v.length; j++) {
            v[j] = (float) (gaussian(from) * std);
        }
        for (long j = skip + v.length, n = (long) fullShape[0] * per; j < n; j++) {
            gaussian(from);
        }
        be.write(p.value(), v);
        return p;
    }

    /** A parameter filled with a constant. */
    public Param constant(String name, float value, boolean decay, int... shape) {
        Param p = create(name, decay, shape);
        be.fill(p.value(), value);
        return p;
    }

    /**
     * The hosted experts' slice of a parameter filled with a constant, its first axis the hosted
     * experts (see {@link Param#expert()}).
     */
    public Param expertConstant(String name, float value, boolean decay, int... shape) {
        Param p = create(name, decay, true, true, shape);
        be.fill(p.value(), value);
        return p;
    }

    /**
     * State that is checkpointed and digested with the weights but not trained by AdamW (see
     * {@link Param#trainable()}), zero at first.
     */
    public Param state(String name, int... shape) {
        Param p = create(name, false, false, false, shape);
        be.fill(p.value(), 0f);
        return p;
    }

    private Param create(String name, boolean decay, int... shape) {
        return create(name, decay, true, false, shape);
    }

    private Param create(String name, boolean decay, boolean trainable, boolean expert, int... shape) {
        for (Param q : params) {
            if (q.name().equals(name)) {
                throw new IllegalArgumentException("parameter " + name + " is defined twice");
            }
        }
        Param p = new Param(name, be.allocate(name, DType.FLOAT32, shape), be.allocate(name + ".grad", DType.FLOAT32, shape),
                be.allocate(name + ".m", DType.FLOAT32, shape), be.allocate(name + ".v", DType.FLOAT32, shape), decay, trainable,
                expert);
        params.add(p);
        return p;
    }

    private static double gaussian(SplittableRandom from) {
        // Box–Muller on the seeded generator: SplittableRandom has no nextGaussian on Java 17.
        double u1 = 1.0 - from.nextDouble();
        double u2 = from.nextDouble();
        return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    }

    public Backend backend() {
        return be;
    }

    public List<Param> all() {
        return Collections.unmodifiableList(params);
    }

    /** The parameters AdamW trains, in creation order. */
    public List<Param> trainable() {
        return params.stream().filter(Param::trainable).toList();
    }

    public Param get(String name) {
        for (Param p : params) {
            if (p.name().equals(name)) {
                return p;
            }
        }
        throw new IllegalArgumentException("no parameter named " + name);
    }

    public void zeroGrads() {
        for (int i = 0; i < params.size(); i++) {  // every step: no iterator
            be.fill(params.get(i).grad(), 0f);
        }
    }

    /** Total number of trainable values. */
    public long count() {
        long n = 0;
        for (Param p : trainable()) {
            n += p.value().size();
        }
        return n;
    }

    /** Copies every value out (for tests and checkpoints). */
    public float[] read(Param p) {
        float[] v = new float[p.value().size()];
        be.read(p.value(), v);
        return v;
    }

    public float[] readGrad(Param p) {
        float[] v = new float[p.grad().size()];
        be.read(p.grad(), v);
        return v;
    }

    /**
     * SHA-256 over every parameter's float bits, in creation order: two runs with equal digests
     * have bit-identical parameters.
     */
    public String digest() {
        ParamDigest d = new ParamDigest();
        for (Param p : params) {
            d.add(p.name(), read(p));
        }
        return d.hex();
    }

    public Tensor tensor(String name) {
        return get(name).value();
    }
}
