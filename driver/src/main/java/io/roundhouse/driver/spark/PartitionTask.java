package io.roundhouse.driver.spark;

import io.roundhouse.worker.data.DataSplits;
import io.roundhouse.worker.data.FloatDataset;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import scala.collection.Iterator;
import scala.runtime.AbstractFunction1;

/**
 * A worker of the barrier stage fed by its partition of the data ({@code data.distribution =
 * partitioned}): the partition's examples become this worker's training and test parts, then
 * {@link WorkerTask} runs as usual.
 */
final class PartitionTask extends AbstractFunction1<Iterator<PartitionTask.Example>, Iterator<String>>
        implements Serializable {
    private static final long serialVersionUID = 1L;

    /** One example as it travels through Spark: its set, label and features as the model reads them. */
    record Example(boolean test, int label, float[] x) implements Serializable {
    }

    private final WorkerTask worker;
    private final int features;
    private final int classes;

    PartitionTask(WorkerTask worker, int features, int classes) {
        this.worker = worker;
        this.features = features;
        this.classes = classes;
    }

    @Override
    public Iterator<String> apply(Iterator<Example> partition) {
        List<Example> train = new ArrayList<>();
        List<Example> test = new ArrayList<>();
        while (partition.hasNext()) {
            Example e = partition.next();
            (e.test() ? test : train).add(e);
        }
        return worker.run(new DataSplits(dataset("train", train), dataset("test", test)), true);
    }

    private FloatDataset dataset(String name, List<Example> examples) {
        float[] x = new float[examples.size() * features];
        int[] y = new int[examples.size()];
        for (int i = 0; i < y.length; i++) {
            System.arraycopy(examples.get(i).x(), 0, x, i * features, features);
            y[i] = examples.get(i).label();
        }
        return new FloatDataset(name, x, y, features, classes);
    }
}
