package io.roundhouse.driver.spark;

import io.roundhouse.worker.data.DataException;
import io.roundhouse.worker.data.DataSplits;
import io.roundhouse.worker.data.FloatDataset;
import java.util.List;
import org.apache.spark.sql.AnalysisException;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.NumericType;
import org.apache.spark.sql.types.StructField;

/**
 * A user's own data as Parquet, read with Spark: {@code <dir>/train.parquet} and
 * {@code <dir>/test.parquet} (files or folders of part files), each with an integer column
 * {@code label} (classes 0..C−1) and a column {@code features}, an array of numbers of the same
 * length in every row, used as given (scale them beforehand).
 */
final class ParquetData {
    private ParquetData() {
    }

    static DataSplits load(SparkSession spark, String dir) {
        FloatDataset train = read(spark, dir + "/train.parquet", "train", -1);
        FloatDataset test = read(spark, dir + "/test.parquet", "test", train.classes());
        if (test.features() != train.features()) {
            throw new DataException(dir + "/test.parquet has " + test.features() + " features per row but train.parquet "
                    + train.features());
        }
        return new DataSplits(train, test);
    }

    /** @param classes the label range to check against, or −1 to take it from this file (max label + 1) */
    private static FloatDataset read(SparkSession spark, String path, String name, int classes) {
        org.apache.hadoop.fs.Path p = new org.apache.hadoop.fs.Path(path);
        boolean there;
        try {
            there = p.getFileSystem(spark.sparkContext().hadoopConfiguration()).exists(p);
        } catch (java.io.IOException | IllegalArgumentException e) {
            throw new DataException("cannot look for " + path + " (" + e.getMessage() + "); check data.dir and the "
                    + "Hadoop settings for its file system");
        }
        if (!there) {
            throw new DataException("data.dir " + p.getParent() + " has no " + p.getName() + ": with data.format = "
                    + "parquet, data.dir must hold train.parquet and test.parquet (files or folders of part files)");
        }
        Dataset<Row> df;
        try {
            df = spark.read().parquet(path);
        } catch (Exception e) {
            if (e instanceof AnalysisException) {
                throw new DataException("cannot read " + path + ": " + ((AnalysisException) e).getSimpleMessage()
                        + ". With data.format = parquet, data.dir must hold train.parquet and test.parquet");
            }
            throw e;
        }
        StructField label = field(df, path, "label");
        StructField features = field(df, path, "features");
        if (!(label.dataType() instanceof org.apache.spark.sql.types.IntegralType)) {
            throw new DataException(path + ": column label is " + label.dataType().simpleString() + "; it must hold integers");
        }
        DataType element = features.dataType() instanceof ArrayType a ? a.elementType() : null;
        if (!(element instanceof NumericType)) {
            throw new DataException(path + ": column features is " + features.dataType().simpleString()
                    + "; it must be an array of numbers");
        }
        List<Row> rows = df.select("label", "features").collectAsList();
        if (rows.isEmpty()) {
            throw new DataException(path + " has no rows");
        }
        int n = rows.size();
        int f = -1;
        int[] y = new int[n];
        float[] x = null;
        int maxLabel = 0;
        for (int r = 0; r < n; r++) {
            Row row = rows.get(r);
            if (row.isNullAt(0) || row.isNullAt(1)) {
                throw new DataException(path + ": row " + r + " has no " + (row.isNullAt(0) ? "label" : "features"));
            }
            List<Object> v = row.getList(1);
            if (f < 0) {
                f = v.size();
                if (f == 0) {
                    throw new DataException(path + ": row 0 has an empty features array");
                }
                x = new float[n * f];
            } else if (v.size() != f) {
                throw new DataException(path + ": row " + r + " has " + v.size() + " features, row 0 has " + f
                        + "; every row must have the same number");
            }
            for (int j = 0; j < f; j++) {
                Object o = v.get(j);
                if (o == null) {
                    throw new DataException(path + ": row " + r + ", feature " + j + " is null");
                }
                x[r * f + j] = ((Number) o).floatValue();
            }
            long l = ((Number) row.get(0)).longValue();
            if (l < 0 || (classes > 0 && l >= classes) || l > 1_000_000) {
                throw new DataException(path + ": row " + r + " has label " + l + "; labels must be in [0, "
                        + (classes > 0 ? classes : "number of classes") + ")");
            }
            y[r] = (int) l;
            maxLabel = Math.max(maxLabel, y[r]);
        }
        int c = classes > 0 ? classes : maxLabel + 1;
        if (c < 2) {
            throw new DataException(path + ": every label is 0; a classifier needs at least two classes");
        }
        return new FloatDataset(name, x, y, f, c);
    }

    private static StructField field(Dataset<Row> df, String path, String column) {
        for (StructField s : df.schema().fields()) {
            if (s.name().equals(column)) {
                return s;
            }
        }
        throw new DataException(path + " has no column '" + column + "' (it has " + String.join(", ", df.columns())
                + "); Roundhouse reads 'label' (integers) and 'features' (arrays of numbers)");
    }
}
