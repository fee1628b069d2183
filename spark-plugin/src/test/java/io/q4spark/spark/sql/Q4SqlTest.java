package io.q4spark.spark.sql;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.q4spark.kernels.DType;
import io.q4spark.kernels.KernelOptions;
import io.q4spark.kernels.Q4Linear;
import io.q4spark.kernels.QuantizedLinear;
import io.q4spark.spark.Q4;
import io.q4spark.spark.TestSessions;
import io.q4spark.spark.model.Q4Models;
import io.q4spark.spark.model.TestModels;
import io.q4spark.spark.plugin.Q4Executor;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.apache.spark.sql.AnalysisException;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code q4_linear} and {@code q4.linear} in Spark SQL on local[2]: the same outputs as {@code
 * Q4.apply} and, for an fp16 stack, the scalar reference within the golden tolerances; null rows,
 * bad rows in both modes, unknown models and wrong types with their messages, on the batched and
 * the row-at-a-time paths.
 */
class Q4SqlTest {
  private static final long SEED = 20261125;

  /** The golden tolerances for fp16 / bf16 outputs: |got - ref| <= ATOL + RTOL * |ref|. */
  private static final double RTOL = 1e-2;

  private static final double ATOL = 1e-2;

  /**
   * SQL and Q4.apply run the same kernel in fp32; only the batch a row falls in (and so the
   * summation order of a split or tiled kernel) may differ.
   */
  private static final double SAME_KERNEL_RTOL = 1e-5;

  private static final int K = 64;
  private static final int HIDDEN = 96;
  private static final int N = 32;
  private static final int GROUP = 32;

  /** Rows per batch: small, so partitions hold several batches and a tail. */
  private static final int BATCH_ROWS = 50;

  private static final int ROWS = 333;

  @TempDir static Path tmp;
  private static SparkSession spark;
  private static List<QuantizedLinear> mlp;
  private static float[][] data;

  private static final StructType FLOATS =
      new StructType()
          .add("id", DataTypes.IntegerType, false)
          .add("features", DataTypes.createArrayType(DataTypes.FloatType, true), true);

  @BeforeAll
  static void start() {
    System.out.println("Q4SqlTest seed " + SEED);
    Random r = new Random(SEED);
    mlp =
        List.of(
            TestModels.layer("mlp.up_proj", K, HIDDEN, GROUP, DType.F16, true, r),
            TestModels.layer("mlp.down_proj", HIDDEN, N, GROUP, DType.F16, true, r));
    TestModels.writeCompressedTensors(tmp.resolve("mlp"), mlp, GROUP, DType.F16);
    TestModels.writeCompressedTensors(
        tmp.resolve("square"),
        List.of(TestModels.layer("proj", N, N, GROUP, DType.F16, true, r)),
        GROUP,
        DType.F16);
    data = new float[ROWS][K];
    for (float[] row : data) {
      for (int i = 0; i < K; i++) {
        row[i] = DType.F16.round((float) r.nextGaussian());
      }
    }
    spark =
        TestSessions.local(
            "Q4SqlTest",
            Map.of(
                "spark.sql.extensions",
                Q4SqlExtensions.class.getName(),
                "spark.sql.catalog.q4",
                Q4FunctionCatalog.class.getName(),
                "spark.q4.batch.rows",
                Integer.toString(BATCH_ROWS)));
    Q4Models.register(
        spark,
        "mlp",
        tmp.resolve("mlp").toString(),
        Map.of("layers", "mlp.up_proj,mlp.down_proj", "activation", "relu"));
    frame(List.of(data), FLOATS, false).repartition(3).createOrReplaceTempView("t");
  }

  @AfterAll
  static void stop() {
    spark.stop();
  }

  @AfterEach
  void resetSessionConf() {
    spark.conf().unset("spark.q4.onBadRow");
  }

  private static Dataset<Row> frame(List<float[]> rows, StructType schema, boolean doubles) {
    List<Row> list = new ArrayList<>();
    for (int i = 0; i < rows.size(); i++) {
      float[] v = rows.get(i);
      Object features = null;
      if (v != null) {
        List<Object> values = new ArrayList<>();
        for (float f : v) {
          values.add(doubles ? (Object) (double) f : (Object) f);
        }
        features = values;
      }
      list.add(RowFactory.create(i, features));
    }
    return spark.createDataFrame(list, schema);
  }

  /** Column {@code column} of each row, by the row's id (column 0). */
  private static Map<Integer, float[]> outputs(Dataset<Row> result, int column) {
    Map<Integer, float[]> out = new HashMap<>();
    for (Row row : result.collectAsList()) {
      float[] v = null;
      if (!row.isNullAt(column)) {
        List<Object> l = row.getList(column);
        v = new float[l.size()];
        for (int i = 0; i < v.length; i++) {
          v[i] = (Float) l.get(i);
        }
      }
      out.put(row.getInt(0), v);
    }
    return out;
  }

  private static float[][] scalarReference() {
    KernelOptions options = KernelOptions.defaults().withForced("ScalarW4A16Kernel");
    float[] x = new float[ROWS * K];
    for (int r = 0; r < ROWS; r++) {
      System.arraycopy(data[r], 0, x, r * K, K);
    }
    for (int i = 0; i < mlp.size(); i++) {
      try (Q4Linear l = Q4Linear.create(mlp.get(i), options)) {
        x = l.apply(x, ROWS);
      }
      if (i + 1 < mlp.size()) {
        for (int j = 0; j < x.length; j++) {
          x[j] = Math.max(0f, x[j]);
        }
      }
    }
    float[][] out = new float[ROWS][N];
    for (int r = 0; r < ROWS; r++) {
      System.arraycopy(x, r * N, out[r], 0, N);
    }
    return out;
  }

  /** Row-at-a-time and batched calls may take different kernel paths (M = 1 against a batch). */
  private static void assertWithinGolden(
      Map<Integer, float[]> expected, Map<Integer, float[]> got) {
    assertEquals(expected.size(), got.size());
    for (Map.Entry<Integer, float[]> e : expected.entrySet()) {
      float[] g = got.get(e.getKey());
      assertEquals(N, g.length);
      for (int j = 0; j < N; j++) {
        float want = e.getValue()[j];
        assertEquals(
            want, g[j], ATOL + RTOL * Math.abs(want), "row " + e.getKey() + " output " + j);
      }
    }
  }

  private static void assertSameKernel(Map<Integer, float[]> expected, Map<Integer, float[]> got) {
    assertEquals(expected.size(), got.size());
    for (Map.Entry<Integer, float[]> e : expected.entrySet()) {
      float[] g = got.get(e.getKey());
      assertEquals(N, g.length);
      for (int j = 0; j < N; j++) {
        float want = e.getValue()[j];
        assertEquals(
            want,
            g[j],
            SAME_KERNEL_RTOL * Math.max(1e-3, Math.abs(want)),
            "row " + e.getKey() + " output " + j);
      }
    }
  }

  @Test
  void selectEqualsQ4ApplyAndTheScalarReference() {
    Map<Integer, float[]> got =
        outputs(spark.sql("SELECT id, q4_linear('mlp', features) AS out FROM t"), 1);
    Map<Integer, float[]> apply =
        outputs(Q4.apply(spark.table("t"), "mlp", "features", "out").select("id", "out"), 1);
    assertSameKernel(apply, got);
    float[][] ref = scalarReference();
    for (int r = 0; r < ROWS; r++) {
      for (int j = 0; j < N; j++) {
        double tol = ATOL + RTOL * Math.abs(ref[r][j]);
        assertTrue(
            Math.abs(got.get(r)[j] - ref[r][j]) <= tol,
            "row " + r + " output " + j + ": " + got.get(r)[j] + " vs scalar " + ref[r][j]);
      }
    }
  }

  @Test
  void projectionsRunInBatches() {
    long batches = Q4Executor.current().metrics().batches();
    long rows = Q4Executor.current().metrics().rows();
    assertEquals(
        ROWS, spark.sql("SELECT q4_linear('mlp', features) FROM t").collectAsList().size());
    // 3 partitions of about ROWS / 3 rows in batches of BATCH_ROWS: far fewer batches than rows.
    long ran = Q4Executor.current().metrics().batches() - batches;
    assertTrue(ran <= 3 * (ROWS / 3 / BATCH_ROWS + 1), ran + " batches");
    assertEquals(ROWS, Q4Executor.current().metrics().rows() - rows);
  }

  @Test
  void explainShowsTheBatchedOperator() {
    for (String call : List.of("q4_linear", "q4.linear")) {
      String plan =
          spark
              .sql("EXPLAIN SELECT id, " + call + "('mlp', features) AS out FROM t")
              .collectAsList()
              .getFirst()
              .getString(0);
      assertTrue(plan.contains("Q4BatchEval [q4_linear(mlp, features#"), plan);
      assertTrue(plan.contains("], 50 rows per batch"), plan);
    }
  }

  @Test
  void equalCallsRunOnceAndExpressionsUseTheResult() {
    Dataset<Row> both =
        spark.sql(
            "SELECT id, q4_linear('mlp', features)[0] AS first, q4_linear('mlp', features) AS out"
                + " FROM t");
    String plan = both.queryExecution().executedPlan().toString();
    assertEquals(1, plan.split("Q4BatchEval", -1).length - 1, plan);
    for (Row row : both.collectAsList()) {
      assertEquals(row.getFloat(1), (Float) row.getList(2).get(0), "row " + row.getInt(0));
    }
  }

  @Test
  void aCallOnAnotherCallsOutputIsLiftedAboveIt() {
    Q4Models.register(spark, "square", tmp.resolve("square").toString(), Map.of());
    try {
      Dataset<Row> chained =
          spark.sql("SELECT id, q4_linear('square', q4_linear('mlp', features)) AS out FROM t");
      String plan = chained.queryExecution().executedPlan().toString();
      assertEquals(2, plan.split("Q4BatchEval", -1).length - 1, plan);
      Map<Integer, float[]> got = outputs(chained, 1);
      Map<Integer, float[]> first =
          outputs(spark.sql("SELECT id, q4_linear('mlp', features) FROM t"), 1);
      List<Row> rows = new ArrayList<>();
      first.forEach((id, v) -> rows.add(RowFactory.create(id, box(v))));
      StructType schema =
          new StructType()
              .add("id", DataTypes.IntegerType, false)
              .add("features", DataTypes.createArrayType(DataTypes.FloatType, false), true);
      Map<Integer, float[]> twice =
          outputs(
              Q4.apply(
                      spark.createDataFrame(rows, schema).repartition(2), "square", "features", "o")
                  .select("id", "o"),
              1);
      assertWithinGolden(twice, got);
    } finally {
      Q4Models.unregister("square");
    }
  }

  @Test
  void aProjectionOverALocalRelationIsEvaluatedByTheOptimizer() {
    // Spark's ConvertToLocalRelation runs the call on the driver before planning (here the driver
    // is the executor too): no batched operator, the same outputs within the golden tolerance.
    frame(List.of(data).subList(0, 20), FLOATS, false).createOrReplaceTempView("local");
    Dataset<Row> local = spark.sql("SELECT id, q4_linear('mlp', features) FROM local");
    String plan = local.queryExecution().executedPlan().toString();
    assertTrue(plan.contains("LocalTableScan") && !plan.contains("Q4BatchEval"), plan);
    Map<Integer, float[]> batched =
        outputs(spark.sql("SELECT id, q4_linear('mlp', features) FROM t WHERE id < 20"), 1);
    assertWithinGolden(batched, outputs(local, 1));
  }

  private static List<Float> box(float[] v) {
    List<Float> b = new ArrayList<>();
    for (float f : v) {
      b.add(f);
    }
    return b;
  }

  @Test
  void theCatalogFunctionGivesTheSameOutputs() {
    Map<Integer, float[]> unqualified =
        outputs(spark.sql("SELECT id, q4_linear('mlp', features) FROM t"), 1);
    Map<Integer, float[]> catalog =
        outputs(spark.sql("SELECT id, q4.linear('mlp', features) FROM t"), 1);
    assertSameKernel(unqualified, catalog);
  }

  @Test
  void doubleFeaturesGiveTheSameOutputs() {
    Map<Integer, float[]> floats =
        outputs(spark.sql("SELECT id, q4_linear('mlp', features) FROM t"), 1);
    Map<Integer, float[]> doubles =
        outputs(
            spark.sql("SELECT id, q4_linear('mlp', cast(features AS array<double>)) AS out FROM t"),
            1);
    assertSameKernel(floats, doubles);
  }

  @Test
  void vectorFeaturesGiveTheSameOutputsBatchedAndRowAtATime() {
    spark
        .table("t")
        .select(
            functions.col("id"),
            org.apache.spark.ml.functions.array_to_vector(functions.col("features")).as("v"))
        .createOrReplaceTempView("tv");
    Map<Integer, float[]> floats =
        outputs(spark.sql("SELECT id, q4_linear('mlp', features) FROM t"), 1);
    Dataset<Row> lifted = spark.sql("SELECT id, q4_linear('mlp', v) FROM tv");
    assertTrue(lifted.queryExecution().executedPlan().toString().contains("Q4BatchEval"));
    assertSameKernel(floats, outputs(lifted, 1));
    // A filter over an in-memory relation: the optimizer evaluates it, one row per call through
    // the vector variant's static invoke.
    float want = floats.get(11)[0];
    List<Integer> ids =
        spark
            .sql(
                "SELECT id FROM tv WHERE abs(q4_linear('mlp', v)[0] - ("
                    + want
                    + ")) <= "
                    + (ATOL + RTOL * Math.abs(want)))
            .as(Encoders.INT())
            .collectAsList();
    assertTrue(ids.contains(11), "ids " + ids);
  }

  /** Table {@code t} as Parquet (view {@code tp}): a relation the optimizer cannot evaluate. */
  private static void parquetView() {
    Path dir = tmp.resolve("t.parquet");
    if (!java.nio.file.Files.exists(dir)) {
      spark.table("t").write().parquet(dir.toString());
    }
    spark.read().parquet(dir.toString()).createOrReplaceTempView("tp");
  }

  @Test
  void aFilterRunsInBatchesAndKeepsItsOtherConditions() {
    parquetView();
    float want = outputs(spark.sql("SELECT id, q4_linear('mlp', features) FROM t"), 1).get(7)[0];
    long batches = Q4Executor.current().metrics().batches();
    Dataset<Row> filtered =
        spark.sql(
            "SELECT id FROM tp WHERE id < 100 AND abs(q4_linear('mlp', features)[0] - ("
                + want
                + ")) <= "
                + (ATOL + RTOL * Math.abs(want)));
    String plan = filtered.queryExecution().executedPlan().toString();
    assertTrue(plan.contains("Q4BatchEval"), plan);
    // The condition without a call stays below, pushed into the scan.
    assertTrue(plan.contains("PushedFilters: [IsNotNull(id), LessThan(id,100)]"), plan);
    List<Integer> ids = filtered.as(Encoders.INT()).collectAsList();
    assertTrue(ids.contains(7), "ids " + ids);
    assertTrue(ids.stream().allMatch(i -> i < 100), "ids " + ids);
    // 100 rows in batches of BATCH_ROWS per file, not a call per row.
    long calls = Q4Executor.current().metrics().batches() - batches;
    assertTrue(calls <= 12, calls + " batches");
  }

  @Test
  void rowAtATimeInAnAggregateGivesTheSameOutputs() {
    // A call inside an aggregate is not lifted: it runs through the static invoke, one row per
    // call (M = 1), so it is held to the golden tolerance against the batched projection.
    parquetView();
    float want = outputs(spark.sql("SELECT id, q4_linear('mlp', features) FROM t"), 1).get(7)[0];
    long batches = Q4Executor.current().metrics().batches();
    Dataset<Row> max =
        spark.sql("SELECT max(q4_linear('mlp', features)[0]) FROM tp WHERE id = 7 GROUP BY id");
    assertTrue(!max.queryExecution().executedPlan().toString().contains("Q4BatchEval"));
    float got = max.as(Encoders.FLOAT()).collectAsList().getFirst();
    assertEquals(want, got, ATOL + RTOL * Math.abs(want));
    assertTrue(Q4Executor.current().metrics().batches() - batches >= 1);
  }

  @Test
  void nullRowsGiveNull() {
    List<float[]> rows = new ArrayList<>();
    for (int i = 0; i < 40; i++) {
      rows.add(i % 7 == 3 ? null : data[i]);
    }
    frame(rows, FLOATS, false).repartition(2).createOrReplaceTempView("with_nulls");
    Map<Integer, float[]> got =
        outputs(spark.sql("SELECT id, q4_linear('mlp', features) FROM with_nulls"), 1);
    assertEquals(40, got.size());
    for (int i = 0; i < 40; i++) {
      if (i % 7 == 3) {
        assertNull(got.get(i), "row " + i);
      } else {
        assertNotNull(got.get(i), "row " + i);
      }
    }
  }

  private static void badRowsView() {
    List<float[]> rows = new ArrayList<>();
    for (int i = 0; i < 60; i++) {
      rows.add(data[i]);
    }
    rows.set(2, new float[] {1f, 2f, 3f});
    frame(rows, FLOATS, false).coalesce(1).createOrReplaceTempView("bad");
  }

  /** The messages of {@code e} and its causes: Spark may wrap a task's exception, or not. */
  private static String messages(Throwable e) {
    StringBuilder b = new StringBuilder();
    for (Throwable t = e; t != null; t = t.getCause()) {
      b.append(t).append('\n');
    }
    return b.toString();
  }

  @Test
  void aRowOfTheWrongLengthFailsNamingItsLengthAndK() {
    badRowsView();
    String batched =
        messages(
            assertThrows(
                Exception.class,
                () -> spark.sql("SELECT id, q4_linear('mlp', features) FROM bad").collectAsList()));
    assertTrue(
        batched.contains("has 3 values, expected K=64; set spark.q4.onBadRow=null"), batched);
    String rowByRow =
        messages(
            assertThrows(
                Exception.class,
                () ->
                    spark
                        .sql("SELECT id FROM bad WHERE q4_linear('mlp', features) IS NULL")
                        .collectAsList()));
    assertTrue(
        rowByRow.contains(
            "q4_linear(model 'mlp'): a row has 3 values, expected K=64; set"
                + " spark.q4.onBadRow=null to give such rows a null output"),
        rowByRow);
  }

  @Test
  void aRowOfTheWrongLengthGivesNullUnderOnBadRowNull() {
    badRowsView();
    spark.conf().set("spark.q4.onBadRow", "null");
    Map<Integer, float[]> got =
        outputs(spark.sql("SELECT id, q4_linear('mlp', features) FROM bad"), 1);
    assertEquals(60, got.size());
    assertNull(got.get(2));
    for (int i = 0; i < 60; i++) {
      if (i != 2) {
        assertNotNull(got.get(i), "row " + i);
      }
    }
    List<Row> nulls =
        spark.sql("SELECT id FROM bad WHERE q4_linear('mlp', features) IS NULL").collectAsList();
    assertEquals(List.of(RowFactory.create(2)), nulls);
  }

  @Test
  void anUnknownModelListsTheRegisteredOnes() {
    for (String call : List.of("q4_linear", "q4.linear")) {
      AnalysisException e =
          assertThrows(
              AnalysisException.class,
              () -> spark.sql("SELECT " + call + "('mpl', features) FROM t"));
      assertTrue(
          e.getMessage()
              .contains(
                  "no model named 'mpl' is registered; registered models: [mlp]"
                      + " (Q4Models.register adds one)"),
          e.getMessage());
    }
  }

  @Test
  void aWrongTypeNamesTheArgumentAndTheTypes() {
    for (String call : List.of("q4_linear", "q4.linear")) {
      String name = call.equals("q4_linear") ? "q4_linear" : "q4.linear";
      AnalysisException e =
          assertThrows(
              AnalysisException.class,
              () -> spark.sql("SELECT " + call + "('mlp', cast(id AS string)) FROM t"));
      assertTrue(
          e.getMessage()
              .contains(
                  name
                      + ": argument 2 (features) has type string, expected array<float>,"
                      + " array<double> or vector (Spark ML)"),
          e.getMessage());
      e =
          assertThrows(
              AnalysisException.class, () -> spark.sql("SELECT " + call + "(1, features) FROM t"));
      assertTrue(
          e.getMessage()
              .contains(
                  name
                      + ": argument 1 (model) has type int, expected string (a registered model's"
                      + " name)"),
          e.getMessage());
    }
  }
}
