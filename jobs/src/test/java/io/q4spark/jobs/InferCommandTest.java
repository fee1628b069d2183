package io.q4spark.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.q4spark.kernels.DType;
import io.q4spark.kernels.KernelOptions;
import io.q4spark.kernels.LinearLayerConfig;
import io.q4spark.kernels.Q4Linear;
import io.q4spark.kernels.QuantScheme;
import io.q4spark.kernels.QuantizedLinear;
import io.q4spark.kernels.ScalarType;
import io.q4spark.kernels.format.CompressedTensorsCheckpoint;
import io.q4spark.kernels.format.QuantizationArgs;
import io.q4spark.kernels.quantize.Int4WeightQuantizer;
import io.q4spark.kernels.repack.Int4Layout;
import io.q4spark.kernels.repack.PackedInt4Matrix;
import io.q4spark.spark.Q4SparkPlugin;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code q4spark infer} in a shared local[2] session: formats, results, and bad arguments. */
class InferCommandTest {
  private static final long SEED = 5;
  private static final int K = 32;
  private static final int N = 16;
  private static final int GROUP = 16;
  private static final int ROWS = 40;

  /** fp16 outputs against the same model run outside Spark by the same kernel selection. */
  private static final double TOLERANCE = 1e-6;

  @TempDir static Path tmp;
  private static SparkSession spark;
  private static Path model;
  private static QuantizedLinear layer;
  private static float[][] data;

  private record Run(int status, String out, String err) {}

  private static Run run(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int status =
        Main.run(
            args,
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8));
    return new Run(
        status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  @BeforeAll
  static void start() throws Exception {
    Random r = new Random(SEED);
    float[] w = new float[K * N];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) r.nextGaussian();
    }
    Int4WeightQuantizer.Result q = Int4WeightQuantizer.quantize(w, K, N, GROUP, true, DType.F16);
    layer =
        new QuantizedLinear(
            LinearLayerConfig.of(
                "proj",
                K,
                N,
                ScalarType.UINT4B8,
                DType.F16,
                GROUP,
                false,
                false,
                QuantScheme.W4A16),
            PackedInt4Matrix.fromCodes(Int4Layout.K_N8, K, N, q.codes()),
            q.scales(),
            null,
            null,
            null);
    model = Files.createDirectories(tmp.resolve("model"));
    CompressedTensorsCheckpoint.write(
        model,
        new QuantizationArgs(QuantScheme.W4A16, true, GROUP, false, DType.F16),
        List.of(layer),
        1);
    data = new float[ROWS][K];
    List<String> csv = new ArrayList<>(List.of("id,features"));
    List<String> json = new ArrayList<>();
    for (int i = 0; i < ROWS; i++) {
      StringBuilder spaced = new StringBuilder();
      StringBuilder commas = new StringBuilder();
      for (int j = 0; j < K; j++) {
        data[i][j] = r.nextInt(9) - 4;
        spaced.append(j == 0 ? "" : " ").append((int) data[i][j]);
        commas.append(j == 0 ? "" : ",").append((int) data[i][j]);
      }
      csv.add(i + "," + spaced);
      json.add("{\"id\": " + i + ", \"features\": [" + commas + "]}");
    }
    Files.write(tmp.resolve("in.csv"), csv);
    Files.write(tmp.resolve("in.json"), json);
    spark =
        SparkSession.builder()
            .master("local[2]")
            .appName("InferCommandTest")
            .config("spark.ui.enabled", "false")
            .config("spark.plugins", Q4SparkPlugin.class.getName())
            .getOrCreate();
  }

  @AfterAll
  static void stop() {
    spark.stop();
  }

  private static void assertOutputs(Path output) {
    float[] x = new float[ROWS * K];
    for (int i = 0; i < ROWS; i++) {
      System.arraycopy(data[i], 0, x, i * K, K);
    }
    float[] ref;
    try (Q4Linear l = Q4Linear.create(layer, KernelOptions.defaults())) {
      ref = l.apply(x, ROWS);
    }
    List<Row> rows =
        spark.read().parquet(output.toString()).select("id", "prediction").collectAsList();
    assertEquals(ROWS, rows.size());
    for (Row row : rows) {
      int id = Integer.parseInt(row.get(0).toString());
      List<Float> y = row.getList(1);
      for (int j = 0; j < N; j++) {
        assertEquals(ref[id * N + j], y.get(j), TOLERANCE, "row " + id + " output " + j);
      }
    }
  }

  @Test
  void csvAndJsonGiveTheModelsOutputsAsParquet() throws Exception {
    for (String format : List.of("csv", "json")) {
      Path output = tmp.resolve("out-" + format);
      Run r =
          run(
              "infer",
              "--model",
              model.toString(),
              "--input",
              tmp.resolve("in." + format).toString(),
              "--output",
              output.toString());
      assertEquals(0, r.status(), r.err());
      assertTrue(
          r.out()
              .strip()
              .lines()
              .reduce((a, b) -> b)
              .orElseThrow()
              .matches("infer: 40 rows in \\d+\\.\\d s, \\d+ rows/s -> " + output),
          r.out());
      assertOutputs(output);
      try (Stream<Path> siblings = Files.list(tmp)) {
        assertFalse(
            siblings.anyMatch(p -> p.getFileName().toString().contains(".inprogress-")),
            "the temporary output was renamed");
      }
    }
  }

  @Test
  void parquetRoundTrip() {
    Path parquet = tmp.resolve("in.parquet");
    spark.read().json(tmp.resolve("in.json").toString()).write().parquet(parquet.toString());
    Path output = tmp.resolve("out-parquet");
    Run r =
        run(
            "infer",
            "--model",
            model.toString(),
            "--input",
            parquet.toString(),
            "--output",
            output.toString(),
            "--output-column",
            "prediction");
    assertEquals(0, r.status(), r.err());
    assertOutputs(output);
  }

  @Test
  void badArgumentsPrintOneLineAndExitTwo() {
    String in = tmp.resolve("in.json").toString();
    String m = model.toString();
    String out = tmp.resolve("never").toString();
    assertUsage("q4spark infer: missing --model; " + InferCommand.USAGE, "infer", "--input", in);
    assertUsage(
        "q4spark infer: no such model directory: /no/model",
        "infer",
        "--model",
        "/no/model",
        "--input",
        in,
        "--output",
        out);
    assertUsage(
        "q4spark infer: no such input: /no/input.json",
        "infer",
        "--model",
        m,
        "--input",
        "/no/input.json",
        "--output",
        out);
    assertUsage(
        "q4spark infer: input "
            + in
            + " has no column 'x'; its columns are [features, id] (--column names the features"
            + " column)",
        "infer",
        "--model",
        m,
        "--input",
        in,
        "--output",
        out,
        "--column",
        "x");
    assertUsage(
        "q4spark infer: input "
            + in
            + ": column 'id' has type bigint, expected array<float>, array<double> or vector"
            + " (Spark ML)",
        "infer",
        "--model",
        m,
        "--input",
        in,
        "--output",
        out,
        "--column",
        "id");
    assertUsage(
        "q4spark infer: output " + model + " exists already: remove it or choose another path",
        "infer",
        "--model",
        m,
        "--input",
        in,
        "--output",
        m);
    assertFalse(Files.exists(Path.of(out)));
  }

  @Test
  void aFailedJobLeavesNoOutput() throws Exception {
    Path bad = tmp.resolve("bad.json");
    Files.write(bad, List.of("{\"id\": 0, \"features\": [1, 2, 3]}"));
    Path output = tmp.resolve("out-bad");
    Run r =
        run(
            "infer",
            "--model",
            model.toString(),
            "--input",
            bad.toString(),
            "--output",
            output.toString());
    assertEquals(1, r.status(), r.out() + r.err());
    assertTrue(
        r.out()
            .contains(
                "infer: failed: Q4.apply(model 'model', column 'features'): row 0 of partition 0"
                    + " has 3 values, expected K=32; set spark.q4.onBadRow=null to give such rows a"
                    + " null output\n"),
        r.out());
    assertFalse(Files.exists(output));
    try (Stream<Path> siblings = Files.list(tmp)) {
      assertFalse(
          siblings.anyMatch(p -> p.getFileName().toString().startsWith("out-bad")),
          "no temporary output is left");
    }
  }

  private static void assertUsage(String line, String... args) {
    Run r = run(args);
    assertEquals(2, r.status(), r.out() + r.err());
    assertEquals(line + "\n", r.err());
  }
}
