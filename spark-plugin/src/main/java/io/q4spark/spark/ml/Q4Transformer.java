package io.q4spark.spark.ml;

import io.q4spark.spark.Q4;
import io.q4spark.spark.arrow.InputColumn;
import io.q4spark.spark.conf.Q4Conf;
import java.util.Arrays;
import java.util.Map;
import org.apache.spark.ml.Transformer;
import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.param.ParamMap;
import org.apache.spark.ml.util.DefaultParamsReader;
import org.apache.spark.ml.util.DefaultParamsWritable;
import org.apache.spark.ml.util.DefaultParamsWriter;
import org.apache.spark.ml.util.Identifiable;
import org.apache.spark.ml.util.MLReader;
import org.apache.spark.ml.util.MLWriter;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.StructType;

/**
 * A registered q4spark model as a Spark ML pipeline stage: {@code transform} is {@link Q4#apply}
 * (batched through Arrow, one materialisation per executor), so a quantized layer stack can sit in
 * a {@code Pipeline} beside feature transformers.
 *
 * <pre>
 *   Q4Models.register(spark, "mlp", "/models/mlp", Map.of());
 *   Q4Transformer q4 = new Q4Transformer().setModel("mlp").setInputCol("features").setOutputCol("y");
 *   Dataset&lt;Row&gt; out = new Pipeline().setStages(new PipelineStage[] {assembler, q4}).fit(df).transform(df);
 * </pre>
 *
 * The stage holds the model's registered name, not its weights: saved with {@code write().save}
 * (Spark ML's default params format) and loaded with {@link #load}, it applies whatever model is
 * registered under that name in the session that loads it. Input columns: {@code array<float>},
 * {@code array<double>} or {@code vector}; the output is {@code array<float>} (fp16 {@code binary}
 * under {@code spark.q4.output.format=fp16}).
 */
public final class Q4Transformer extends Transformer implements DefaultParamsWritable {
  private static final long serialVersionUID = 1L;

  private final String uid;
  private final Param<String> model;
  private final Param<String> inputCol;
  private final Param<String> outputCol;

  public Q4Transformer() {
    this(Identifiable.randomUID("q4"));
  }

  /** The constructor Spark ML's reader calls with the saved uid. */
  public Q4Transformer(String uid) {
    this.uid = uid;
    this.model = new Param<>(this, "model", "name of a model registered with Q4Models.register");
    this.inputCol =
        new Param<>(this, "inputCol", "input column: " + InputColumn.EXPECTED + " of K values");
    this.outputCol =
        new Param<>(this, "outputCol", "output column (array<float> of the model's N outputs)");
    setDefault(inputCol, "features");
    setDefault(outputCol, uid + "__output");
  }

  @Override
  public String uid() {
    return uid;
  }

  /** Spark ML finds params by these public, argument-free methods. */
  public Param<String> model() {
    return model;
  }

  public Param<String> inputCol() {
    return inputCol;
  }

  public Param<String> outputCol() {
    return outputCol;
  }

  public Q4Transformer setModel(String value) {
    set(model, value);
    return this;
  }

  public Q4Transformer setInputCol(String value) {
    set(inputCol, value);
    return this;
  }

  public Q4Transformer setOutputCol(String value) {
    set(outputCol, value);
    return this;
  }

  public String getModel() {
    return $(model);
  }

  public String getInputCol() {
    return $(inputCol);
  }

  public String getOutputCol() {
    return $(outputCol);
  }

  @Override
  public Dataset<Row> transform(Dataset<?> dataset) {
    requireModel();
    return Q4.apply(dataset.toDF(), getModel(), getInputCol(), getOutputCol());
  }

  /**
   * The input schema with the output column added; checks the input column's type and that the
   * output column is new, as {@link Q4#apply} does, so a pipeline fails before it runs.
   */
  @Override
  public StructType transformSchema(StructType schema) {
    String where = "Q4Transformer " + uid + " (model '" + (isSet(model) ? getModel() : "") + "')";
    InputColumn.resolve(schema, getInputCol(), where);
    if (Arrays.asList(schema.fieldNames()).contains(getOutputCol())) {
      throw new IllegalArgumentException(
          where + ": the output column '" + getOutputCol() + "' exists already; choose another");
    }
    return schema.add(getOutputCol(), outputType(), true);
  }

  private void requireModel() {
    if (!isSet(model)) {
      throw new IllegalArgumentException(
          "Q4Transformer " + uid + ": no model set; call setModel with a registered model's name");
    }
  }

  /** The output column's type under the active session's {@code spark.q4.output.format}. */
  private static DataType outputType() {
    return SparkSession.getActiveSession()
        .map(s -> s.conf().get(Q4Conf.OUTPUT_FORMAT.key(), null))
        .filter(v -> v != null)
        .map(v -> Q4Conf.OUTPUT_FORMAT.get(Map.of(Q4Conf.OUTPUT_FORMAT.key(), v)))
        .getOrElse(() -> Q4Conf.OUTPUT_FORMAT.get(Map.of()))
        .sparkType();
  }

  @Override
  public Q4Transformer copy(ParamMap extra) {
    return defaultCopy(extra);
  }

  @Override
  public MLWriter write() {
    return new DefaultParamsWriter(this);
  }

  public static MLReader<Q4Transformer> read() {
    return new DefaultParamsReader<>();
  }

  /** Loads a stage saved with {@code write().save(path)}. */
  public static Q4Transformer load(String path) {
    return read().load(path);
  }
}
