package io.q4spark.spark;

import io.q4spark.spark.arrow.BatchPlan;
import io.q4spark.spark.arrow.InputColumn;
import io.q4spark.spark.arrow.ModelPartitionFunction;
import io.q4spark.spark.conf.Q4Conf;
import io.q4spark.spark.conf.Q4Settings;
import io.q4spark.spark.model.ModelHandle;
import io.q4spark.spark.model.Q4Models;
import java.util.Arrays;
import org.apache.spark.rdd.RDD;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.StructType;
import scala.jdk.javaapi.CollectionConverters;

/**
 * The Dataset API: {@code Q4.apply(df, "mlp", "features", "out")} appends column {@code out}, the
 * registered model applied to each row's {@code features}.
 *
 * <p>Rows are processed per partition in batches of {@code spark.q4.batch.rows}: the activations
 * are copied from Spark's internal rows into Arrow memory, the layer stack runs once per batch, and
 * the outputs come back as {@code array<float>} (or fp16 {@code binary} under {@code
 * spark.q4.output.format=fp16}). The session's {@code spark.q4.batch.rows}, {@code
 * spark.q4.onBadRow} and {@code spark.q4.output.format} at the time of the call apply.
 */
public final class Q4 {
  private Q4() {}

  /**
   * {@code df} with column {@code outputCol} appended: model {@code model} applied to {@code
   * inputCol} ({@code array<float>} or {@code array<double>} of the model's K values). A null input
   * gives a null output.
   *
   * @throws IllegalArgumentException for an unknown model (naming the registered ones), a missing
   *     input column, an input column of another type, or an output column that exists already
   * @throws IllegalStateException when Spark runs without the q4spark plugin
   */
  public static Dataset<Row> apply(
      Dataset<Row> df, String model, String inputCol, String outputCol) {
    String where = "Q4.apply(model '" + model + "', column '" + inputCol + "')";
    if (!(df.sparkSession() instanceof org.apache.spark.sql.classic.SparkSession spark)
        || !(df instanceof org.apache.spark.sql.classic.Dataset<Row> classic)) {
      throw new IllegalArgumentException(
          where
              + ": needs a classic (non-Connect) Spark session, but the Dataset is a "
              + df.getClass().getName());
    }
    Q4Conf.requirePlugin(spark.sparkContext().getConf().get("spark.plugins", null), where);
    ModelHandle handle = Q4Models.get(model);
    StructType schema = df.schema();
    InputColumn input = InputColumn.resolve(schema, inputCol, where);
    if (Arrays.asList(schema.fieldNames()).contains(outputCol)) {
      throw new IllegalArgumentException(
          where + ": the output column '" + outputCol + "' exists already; choose another name");
    }
    Q4Settings settings = Q4Settings.from(CollectionConverters.asJava(spark.conf().getAll()));
    BatchPlan plan =
        new BatchPlan(
            where,
            handle,
            input,
            settings.batchRows(),
            settings.onBadRow(),
            settings.outputFormat());
    DataType outType = settings.outputFormat().sparkType();
    RDD<InternalRow> rows = classic.queryExecution().toRdd();
    RDD<InternalRow> out =
        rows.toJavaRDD().mapPartitionsWithIndex(new ModelPartitionFunction(plan), true).rdd();
    return spark.internalCreateDataFrame(out, schema.add(outputCol, outType, true), false);
  }
}
