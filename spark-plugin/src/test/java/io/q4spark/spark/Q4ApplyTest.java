package io.q4spark.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.q4spark.kernels.DType;
import io.q4spark.kernels.Float16;
import io.q4spark.kernels.KernelOptions;
import io.q4spark.kernels.Q4Linear;
import io.q4spark.kernels.QuantizedLinear;
import io.q4spark.spark.model.ModelCache;
import io.q4spark.spark.model.Q4Models;
import io.q4spark.spark.model.TestModels;
import io.q4spark.spark.plugin.Q4Executor;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.apache.spark.SparkException;
import org.apache.spark.ml.linalg.SQLDataTypes;
import org.apache.spark.ml.linalg.Vector;
import org.apache.spark.ml.linalg.Vectors;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link Q4#apply} on local[2] against the kernels run outside Spark: an fp16 stack against the
 * scalar reference within the golden tolerances, an fp32 layer against the same kernel within 1e-5;
 * Spark ML vectors (dense and sparse) against arrays; null rows, bad rows in both modes, wrong
 * column types and unknown models with their messages; one broadcast and one materialisation across
 * jobs.
 */
class Q4ApplyTest {
  private static final long SEED = 20261124;

  /** The golden tolerances for fp16 / bf16 outputs: |got - ref| <= ATOL + RTOL * |ref|. */
  private static final double RTOL = 1e-2;

  private static final double ATOL = 1e-2;

  /** Both sides compute in fp32 with the same kernel: only summation order may differ. */
  private static final double FP32_SAME_KERNEL_RTOL = 1e-5;

  private static final int K = 64;
  private static final int HIDDEN = 96;
  private static final int N = 32;
  private static final int GROUP = 32;

  /** Rows per batch in this session: small, so partitions hold several batches and a tail. */
  private static final int BATCH_ROWS = 50;

  private static final int ROWS = 777;

  @TempDir static Path tmp;
  private static SparkSession spark;
  private static List<QuantizedLinear> mlp;
  private static QuantizedLinear fp32Layer;
  private static float[][] data;

  @BeforeAll
  static void start() {
    System.out.println("Q4ApplyTest seed " + SEED);
    Random r = new Random(SEED);
    mlp =
        List.of(
            TestModels.layer("mlp.up_proj", K, HIDDEN, GROUP, DType.F16, true, r),
            TestModels.layer("mlp.down_proj", HIDDEN, N, GROUP, DType.F16, true, r));
    TestModels.writeCompressedTensors(tmp.resolve("mlp"), mlp, GROUP, DType.F16);
    fp32Layer = TestModels.layer("proj", K, N, GROUP, DType.F32, true, r);
    TestModels.writeCompressedTensors(tmp.resolve("fp32"), List.of(fp32Layer), GROUP, DType.F32);
    data = new float[ROWS][K];
    for (float[] row : data) {
      for (int i = 0; i < K; i++) {
        row[i] = DType.F16.round((float) r.nextGaussian());
      }
    }
    spark =
        TestSessions.local(
            "Q4ApplyTest", Map.of("spark.q4.batch.rows", Integer.toString(BATCH_ROWS)));
    Q4Models.register(
        spark,
        "mlp",
        tmp.resolve("mlp").toString(),
        Map.of("layers", "mlp.up_proj,mlp.down_proj", "activation", "relu"));
    Q4Models.register(spark, "fp32", tmp.resolve("fp32").toString(), Map.of());
  }

  @AfterAll
  static void stop() {
    spark.stop();
  }

  @AfterEach
  void resetSessionConf() {
    spark.conf().unset("spark.q4.onBadRow");
    spark.conf().unset("spark.q4.output.format");
  }

  private static final StructType FLOATS =
      new StructType()
          .add("id", DataTypes.IntegerType, false)
          .add("features", DataTypes.createArrayType(DataTypes.FloatType, true), true);

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

  private static Dataset<Row> dataFrame() {
    return frame(List.of(data), FLOATS, false).repartition(3);
  }

  /** Output rows by id. */
  private static Map<Integer, float[]> outputs(Dataset<Row> result) {
    Map<Integer, float[]> out = new HashMap<>();
    for (Row row : result.collectAsList()) {
      float[] v = null;
      if (!row.isNullAt(2)) {
        List<Object> l = row.getList(2);
        v = new float[l.size()];
        for (int i = 0; i < v.length; i++) {
          v[i] = (Float) l.get(i);
        }
      }
      out.put(row.getInt(0), v);
    }
    return out;
  }

  private static float[][] reference(List<QuantizedLinear> layers, KernelOptions options) {
    float[] x = new float[ROWS * K];
    for (int r = 0; r < ROWS; r++) {
      System.arraycopy(data[r], 0, x, r * K, K);
    }
    for (int i = 0; i < layers.size(); i++) {
      try (Q4Linear l = Q4Linear.create(layers.get(i), options)) {
        x = l.apply(x, ROWS);
      }
      if (i + 1 < layers.size()) {
        for (int j = 0; j < x.length; j++) {
          x[j] = Math.max(0f, x[j]);
        }
      }
    }
    int n = layers.getLast().config().n();
    float[][] out = new float[ROWS][n];
    for (int r = 0; r < ROWS; r++) {
      System.arraycopy(x, r * n, out[r], 0, n);
    }
    return out;
  }

  @Test
  void fp16StackMatchesTheScalarReference() {
    float[][] ref = reference(mlp, KernelOptions.defaults().withForced("ScalarW4A16Kernel"));
    Map<Integer, float[]> got = outputs(Q4.apply(dataFrame(), "mlp", "features", "out"));
    assertEquals(ROWS, got.size());
    for (int r = 0; r < ROWS; r++) {
      float[] g = got.get(r);
      assertEquals(N, g.length);
      for (int j = 0; j < N; j++) {
        double tol = ATOL + RTOL * Math.abs(ref[r][j]);
        assertTrue(
            Math.abs(g[j] - ref[r][j]) <= tol,
            "row " + r + " output " + j + ": " + g[j] + " vs scalar " + ref[r][j]);
      }
    }
  }

  @Test
  void fp32MatchesTheSameKernelTightly() {
    float[][] ref = reference(List.of(fp32Layer), Q4Executor.current().kernelOptions());
    Map<Integer, float[]> got = outputs(Q4.apply(dataFrame(), "fp32", "features", "out"));
    for (int r = 0; r < ROWS; r++) {
      for (int j = 0; j < N; j++) {
        double tol = FP32_SAME_KERNEL_RTOL * Math.max(1e-3, Math.abs(ref[r][j]));
        assertTrue(
            Math.abs(got.get(r)[j] - ref[r][j]) <= tol,
            "row " + r + " output " + j + ": " + got.get(r)[j] + " vs " + ref[r][j]);
      }
    }
  }

  @Test
  void doubleInputGivesTheSameOutputs() {
    StructType doubles =
        new StructType()
            .add("id", DataTypes.IntegerType, false)
            .add("features", DataTypes.createArrayType(DataTypes.DoubleType, false), true);
    Map<Integer, float[]> fromFloats = outputs(Q4.apply(dataFrame(), "fp32", "features", "out"));
    Map<Integer, float[]> fromDoubles =
        outputs(
            Q4.apply(
                frame(List.of(data), doubles, true).repartition(2), "fp32", "features", "out"));
    for (int r = 0; r < ROWS; r++) {
      for (int j = 0; j < N; j++) {
        assertEquals(
            fromFloats.get(r)[j],
            fromDoubles.get(r)[j],
            1e-5 * Math.abs(fromFloats.get(r)[j]) + 1e-6);
      }
    }
  }

  private static final StructType VECTORS =
      new StructType()
          .add("id", DataTypes.IntegerType, false)
          .add("features", SQLDataTypes.VectorType(), true);

  /** Rows as Spark ML vectors: every third one sparse (its zeros left out), the others dense. */
  private static Dataset<Row> vectorFrame(List<float[]> rows) {
    List<Row> list = new ArrayList<>();
    for (int i = 0; i < rows.size(); i++) {
      float[] v = rows.get(i);
      Vector features = null;
      if (v != null) {
        double[] d = new double[v.length];
        for (int j = 0; j < v.length; j++) {
          d[j] = v[j];
        }
        features = i % 3 == 0 ? Vectors.dense(d).toSparse() : Vectors.dense(d);
      }
      list.add(RowFactory.create(i, features));
    }
    return spark.createDataFrame(list, VECTORS);
  }

  @Test
  void vectorInputGivesTheSameOutputsAsArrays() {
    // Half the features zero, so the sparse rows really are sparse.
    List<float[]> rows = new ArrayList<>();
    for (int i = 0; i < 200; i++) {
      float[] v = data[i].clone();
      for (int j = i % 2; j < K; j += 2) {
        v[j] = 0f;
      }
      rows.add(i == 7 ? null : v);
    }
    Map<Integer, float[]> fromArrays =
        outputs(Q4.apply(frame(rows, FLOATS, false).repartition(2), "fp32", "features", "out"));
    Map<Integer, float[]> fromVectors =
        outputs(Q4.apply(vectorFrame(rows).repartition(2), "fp32", "features", "out"));
    assertEquals(200, fromVectors.size());
    assertNull(fromVectors.get(7));
    for (int i = 0; i < 200; i++) {
      if (i != 7) {
        assertEquals(List.of(box(fromArrays.get(i))), List.of(box(fromVectors.get(i))), "row " + i);
      }
    }
  }

  @Test
  void aVectorOfTheWrongSizeIsABadRow() {
    List<float[]> rows = new ArrayList<>(List.of(data).subList(0, 10));
    rows.set(4, new float[] {1f, 0f, 2f});
    rows.set(6, new float[] {1f, 0f, 2f, 5f});
    SparkException e =
        assertThrows(
            SparkException.class,
            () ->
                Q4.apply(vectorFrame(rows).coalesce(1), "mlp", "features", "out").collectAsList());
    assertTrue(
        e.getMessage()
            .contains(
                "Q4.apply(model 'mlp', column 'features'): row 4 of partition 0 is a dense vector"
                    + " of size 3, expected K=64"),
        e.getMessage());
    spark.conf().set("spark.q4.onBadRow", "null");
    Map<Integer, float[]> got =
        outputs(Q4.apply(vectorFrame(rows).coalesce(1), "mlp", "features", "out"));
    assertEquals(10, got.size());
    assertNull(got.get(4));
    assertNull(got.get(6), "row 6 is a sparse vector of size 4");
    assertNotNull(got.get(5));
  }

  @Test
  void nullRowsGiveNullAndTheRestIsKept() {
    List<float[]> rows = new ArrayList<>();
    for (int i = 0; i < 120; i++) {
      rows.add(i % 7 == 3 ? null : data[i]);
    }
    Map<Integer, float[]> got =
        outputs(Q4.apply(frame(rows, FLOATS, false).coalesce(1), "mlp", "features", "out"));
    assertEquals(120, got.size());
    for (int i = 0; i < 120; i++) {
      if (i % 7 == 3) {
        assertNull(got.get(i), "row " + i);
      } else {
        assertNotNull(got.get(i), "row " + i);
        assertEquals(N, got.get(i).length);
      }
    }
  }

  private static List<float[]> withBadRows() {
    List<float[]> rows = new ArrayList<>();
    for (int i = 0; i < 60; i++) {
      rows.add(data[i]);
    }
    rows.set(2, new float[] {1f, 2f, 3f});
    return rows;
  }

  @Test
  void aRowOfTheWrongLengthFailsNamingItsPosition() {
    SparkException e =
        assertThrows(
            SparkException.class,
            () ->
                Q4.apply(frame(withBadRows(), FLOATS, false).coalesce(1), "mlp", "features", "out")
                    .collectAsList());
    assertTrue(
        e.getMessage()
            .contains(
                "java.lang.IllegalArgumentException: Q4.apply(model 'mlp', column 'features'):"
                    + " row 2 of partition 0 has 3 values, expected K=64; set spark.q4.onBadRow=null"
                    + " to give such rows a null output"),
        e.getMessage());
  }

  @Test
  void aRowOfTheWrongLengthGivesNullUnderOnBadRowNull() {
    spark.conf().set("spark.q4.onBadRow", "null");
    Map<Integer, float[]> got =
        outputs(
            Q4.apply(frame(withBadRows(), FLOATS, false).coalesce(1), "mlp", "features", "out"));
    spark.conf().unset("spark.q4.onBadRow");
    assertEquals(60, got.size());
    assertNull(got.get(2));
    Map<Integer, float[]> good = outputs(Q4.apply(dataFrame(), "mlp", "features", "out"));
    for (int i = 0; i < 60; i++) {
      if (i != 2) {
        assertEquals(List.of(box(good.get(i))), List.of(box(got.get(i))), "row " + i);
      }
    }
  }

  private static Float[] box(float[] v) {
    Float[] b = new Float[v.length];
    for (int i = 0; i < v.length; i++) {
      b[i] = v[i];
    }
    return b;
  }

  @Test
  void aNullElementIsABadRow() {
    List<Row> list = new ArrayList<>();
    List<Object> values = new ArrayList<>();
    for (int i = 0; i < K; i++) {
      values.add(i == 5 ? null : (Object) 1f);
    }
    list.add(RowFactory.create(0, values));
    SparkException e =
        assertThrows(
            SparkException.class,
            () ->
                Q4.apply(spark.createDataFrame(list, FLOATS), "mlp", "features", "out")
                    .collectAsList());
    assertTrue(
        e.getMessage()
            .contains(
                "row 0 of partition 0 has a null at element 5, expected K=64 non-null values"),
        e.getMessage());
  }

  @Test
  void fp16OutputIsBinaryHalfPrecision() {
    Map<Integer, float[]> floats = outputs(Q4.apply(dataFrame(), "mlp", "features", "out"));
    spark.conf().set("spark.q4.output.format", "fp16");
    Dataset<Row> half = Q4.apply(dataFrame(), "mlp", "features", "out");
    spark.conf().unset("spark.q4.output.format");
    assertEquals(DataTypes.BinaryType, half.schema().apply("out").dataType());
    for (Row row : half.collectAsList()) {
      byte[] b = (byte[]) row.get(2);
      float[] f = floats.get(row.getInt(0));
      assertEquals(2 * N, b.length);
      for (int j = 0; j < N; j++) {
        short h = (short) ((b[2 * j] & 0xFF) | (b[2 * j + 1] << 8));
        assertEquals(Float16.round(f[j]), Float16.toFloat(h));
      }
    }
  }

  @Test
  void wrongColumnTypeNamesTheColumnAndTheTypes() {
    Dataset<Row> df = dataFrame().selectExpr("id", "cast(id as string) as features");
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> Q4.apply(df, "mlp", "features", "out"));
    assertEquals(
        "Q4.apply(model 'mlp', column 'features'): column 'features' has type string, expected"
            + " array<float>, array<double> or vector (Spark ML)",
        e.getMessage());
    e =
        assertThrows(
            IllegalArgumentException.class, () -> Q4.apply(dataFrame(), "mlp", "x", "out"));
    assertEquals(
        "Q4.apply(model 'mlp', column 'x'): there is no column 'x'; the columns are [id,"
            + " features]",
        e.getMessage());
    e =
        assertThrows(
            IllegalArgumentException.class, () -> Q4.apply(dataFrame(), "mlp", "features", "id"));
    assertEquals(
        "Q4.apply(model 'mlp', column 'features'): the output column 'id' exists already; choose"
            + " another name",
        e.getMessage());
  }

  @Test
  void unknownModelListsTheRegisteredOnes() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class, () -> Q4.apply(dataFrame(), "mpl", "features", "out"));
    assertEquals(
        "no model named 'mpl' is registered; registered models: [fp32, mlp] (Q4Models.register"
            + " adds one)",
        e.getMessage());
  }

  @Test
  void oneBroadcastAndOneMaterialisationAcrossJobs() {
    int broadcasts = Q4Models.broadcasts();
    int materialised = ModelCache.materializations();
    Q4Models.register(
        spark,
        "again",
        tmp.resolve("mlp").toString(),
        Map.of("layers", "mlp.up_proj,mlp.down_proj", "activation", "relu"));
    long rowsBefore = Q4Executor.current().metrics().rows();
    for (int job = 0; job < 3; job++) {
      assertEquals(ROWS, Q4.apply(dataFrame(), "again", "features", "out").count());
    }
    assertEquals(1, Q4Models.broadcasts() - broadcasts);
    assertEquals(1, ModelCache.materializations() - materialised);
    assertTrue(Q4Executor.current().metrics().rows() - rowsBefore >= 3L * ROWS);
    Q4Models.unregister("again");
  }
}
