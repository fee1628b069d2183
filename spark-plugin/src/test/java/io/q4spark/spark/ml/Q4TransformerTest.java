package io.q4spark.spark.ml;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.q4spark.kernels.DType;
import io.q4spark.spark.Q4;
import io.q4spark.spark.TestSessions;
import io.q4spark.spark.model.Q4Models;
import io.q4spark.spark.model.TestModels;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.apache.spark.ml.Pipeline;
import org.apache.spark.ml.PipelineModel;
import org.apache.spark.ml.PipelineStage;
import org.apache.spark.ml.feature.VectorAssembler;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link Q4Transformer} on local[2]: in a pipeline after a {@code VectorAssembler} it gives exactly
 * what {@link Q4#apply} gives on the same values (same kernel, same batches); a pipeline saved and
 * loaded again gives the same outputs; schema errors are raised before anything runs.
 */
class Q4TransformerTest {
  private static final long SEED = 20261202;
  private static final int K = 16;
  private static final int N = 24;
  private static final int GROUP = 8;
  private static final int ROWS = 300;

  @TempDir static Path tmp;
  private static SparkSession spark;
  private static Dataset<Row> table;

  @BeforeAll
  static void start() {
    Random r = new Random(SEED);
    TestModels.writeCompressedTensors(
        tmp.resolve("proj"),
        List.of(TestModels.layer("proj", K, N, GROUP, DType.F32, true, r)),
        GROUP,
        DType.F32);
    spark = TestSessions.local("Q4TransformerTest", Map.of());
    Q4Models.register(spark, "proj", tmp.resolve("proj").toString(), Map.of());
    StructType schema = new StructType().add("id", DataTypes.IntegerType, false);
    for (int c = 0; c < K; c++) {
      schema = schema.add("c" + c, DataTypes.DoubleType, false);
    }
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < ROWS; i++) {
      Object[] v = new Object[K + 1];
      v[0] = i;
      for (int c = 0; c < K; c++) {
        // Float values, so the float array and the double vector hold the same numbers.
        v[c + 1] = (double) (float) r.nextGaussian();
      }
      rows.add(RowFactory.create(v));
    }
    table = spark.createDataFrame(rows, schema).repartition(2);
  }

  @AfterAll
  static void stop() {
    spark.stop();
  }

  private static String[] columns() {
    String[] cols = new String[K];
    for (int c = 0; c < K; c++) {
      cols[c] = "c" + c;
    }
    return cols;
  }

  private static Map<Integer, List<Float>> outputs(Dataset<Row> result, String column) {
    Map<Integer, List<Float>> out = new HashMap<>();
    for (Row row : result.select("id", column).collectAsList()) {
      out.put(row.getInt(0), row.getList(1));
    }
    return out;
  }

  private static Pipeline pipeline() {
    VectorAssembler assembler = new VectorAssembler().setInputCols(columns()).setOutputCol("v");
    Q4Transformer q4 = new Q4Transformer().setModel("proj").setInputCol("v").setOutputCol("y");
    return new Pipeline().setStages(new PipelineStage[] {assembler, q4});
  }

  @Test
  void aPipelineGivesWhatQ4ApplyGives() {
    Dataset<Row> viaPipeline = pipeline().fit(table).transform(table);
    Column[] cols = new Column[K];
    for (int c = 0; c < K; c++) {
      cols[c] = functions.col("c" + c).cast("float");
    }
    Dataset<Row> arrays = table.select(functions.col("id"), functions.array(cols).as("x"));
    Map<Integer, List<Float>> expected = outputs(Q4.apply(arrays, "proj", "x", "y"), "y");
    Map<Integer, List<Float>> got = outputs(viaPipeline, "y");
    assertEquals(ROWS, got.size());
    assertEquals(expected, got);
  }

  @Test
  void aSavedPipelineLoadsAndGivesTheSameOutputs() throws Exception {
    PipelineModel fitted = pipeline().fit(table);
    String path = tmp.resolve("saved-pipeline").toString();
    fitted.write().overwrite().save(path);
    PipelineModel loaded = PipelineModel.load(path);
    Q4Transformer stage = (Q4Transformer) loaded.stages()[1];
    assertEquals("proj", stage.getModel());
    assertEquals("v", stage.getInputCol());
    assertEquals("y", stage.getOutputCol());
    assertEquals(((Q4Transformer) fitted.stages()[1]).uid(), stage.uid());
    assertEquals(outputs(fitted.transform(table), "y"), outputs(loaded.transform(table), "y"));
  }

  @Test
  void schemaErrorsComeBeforeAnythingRuns() {
    Q4Transformer q4 = new Q4Transformer().setModel("proj").setInputCol("c0").setOutputCol("y");
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> q4.transformSchema(table.schema()));
    assertEquals(
        "Q4Transformer "
            + q4.uid()
            + " (model 'proj'): column 'c0' has type double, expected array<float>, array<double>"
            + " or vector (Spark ML)",
        e.getMessage());
    q4.setInputCol("v").setOutputCol("c1");
    Dataset<Row> assembled =
        new VectorAssembler().setInputCols(columns()).setOutputCol("v").transform(table);
    e = assertThrows(IllegalArgumentException.class, () -> q4.transformSchema(assembled.schema()));
    assertTrue(e.getMessage().contains("the output column 'c1' exists already"), e.getMessage());
    Q4Transformer noModel = new Q4Transformer().setInputCol("v");
    e = assertThrows(IllegalArgumentException.class, () -> noModel.transform(assembled));
    assertEquals(
        "Q4Transformer "
            + noModel.uid()
            + ": no model set; call setModel with a registered model's name",
        e.getMessage());
    StructType out = q4.setOutputCol("y").transformSchema(assembled.schema());
    assertEquals("array<float>", out.apply("y").dataType().simpleString());
  }
}
