package io.q4spark.jobs;

import io.q4spark.kernels.DType;
import io.q4spark.kernels.LinearLayerConfig;
import io.q4spark.kernels.QuantScheme;
import io.q4spark.kernels.QuantizedLinear;
import io.q4spark.kernels.ScalarType;
import io.q4spark.kernels.format.CompressedTensorsCheckpoint;
import io.q4spark.kernels.format.QuantizationArgs;
import io.q4spark.kernels.quantize.Int4WeightQuantizer;
import io.q4spark.kernels.repack.Int4Layout;
import io.q4spark.kernels.repack.PackedInt4Matrix;
import io.q4spark.spark.plugin.Q4Executor;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * {@code q4spark demo [--rows R] [--dir DIR]}: makes a small quantized MLP (two int4 linear layers
 * with a ReLU between them), writes it as a real compressed-tensors checkpoint and a generated
 * dataset as Parquet, runs {@code infer} on them through Spark ({@code local[*]}, the q4spark
 * plugin, Arrow batches), and compares the written outputs with an fp32 evaluation of the same
 * dequantized weights. Ends with {@code demo: <rows> rows, <rows/s> rows/s, max relative error <e>
 * vs fp32 reference}.
 */
final class DemoCommand implements Main.Command {
  /** Fixed so every run makes the same model and data. */
  private static final long SEED = 42;

  private static final int IN = 256;
  private static final int HIDDEN = 512;
  private static final int OUT = 128;
  private static final int GROUP = 128;
  private static final DType DTYPE = DType.F16;

  @Override
  public String summary() {
    return "make a quantized MLP checkpoint and a dataset, run them through the kernels";
  }

  @Override
  public int run(String[] args, PrintStream out) throws Main.UsageException {
    int rows = 8192;
    Path dir = null;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--rows" -> {
          if (i + 1 >= args.length) {
            throw new Main.UsageException("--rows needs a value");
          }
          try {
            rows = Integer.parseInt(args[++i]);
          } catch (NumberFormatException e) {
            rows = -1;
          }
          if (rows <= 0) {
            throw new Main.UsageException(
                "The value of --rows should be a positive integer, but was " + args[i]);
          }
        }
        case "--dir" -> {
          if (i + 1 >= args.length) {
            throw new Main.UsageException("--dir needs a value");
          }
          dir = Path.of(args[++i]);
        }
        default ->
            throw new Main.UsageException(
                "unknown argument '" + args[i] + "'; usage: demo [--rows R] [--dir DIR]");
      }
    }
    try {
      if (dir == null) {
        dir = Files.createTempDirectory("q4spark-demo");
      } else {
        Files.createDirectories(dir);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }

    Random r = new Random(SEED);
    QuantizationArgs qargs = new QuantizationArgs(QuantScheme.W4A16, true, GROUP, false, DTYPE);
    List<QuantizedLinear> model =
        List.of(
            quantizedLayer("mlp.up_proj", IN, HIDDEN, r),
            quantizedLayer("mlp.down_proj", HIDDEN, OUT, r));
    Path modelDir = dir.resolve("model");
    try {
      Files.createDirectories(modelDir);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    CompressedTensorsCheckpoint.write(modelDir, qargs, model, 1);
    out.println(
        "demo: wrote a compressed-tensors checkpoint ("
            + IN
            + " -> "
            + HIDDEN
            + " -> "
            + OUT
            + ", int4, G="
            + GROUP
            + ") to "
            + modelDir);

    float[] data = new float[rows * IN];
    for (int i = 0; i < data.length; i++) {
      data[i] = DTYPE.round((float) r.nextGaussian());
    }
    float[] result = new float[rows * OUT];
    InferJob.Result job;
    try (InferJob.Session session = InferJob.session("q4spark demo", null, Map.of())) {
      SparkSession spark = session.spark();
      out.println("demo: executors: " + Q4Executor.current().backend().reason());
      Path input = dir.resolve("input.parquet");
      Path output = dir.resolve("output.parquet");
      deleteRecursively(output);
      List<Row> list = new ArrayList<>(rows);
      for (int i = 0; i < rows; i++) {
        list.add(RowFactory.create(i, Arrays.copyOfRange(data, i * IN, (i + 1) * IN)));
      }
      // Enough slices that no task carries more than about 512 KiB of the generated rows.
      int slices = Math.max(2, (int) ((long) rows * IN * Float.BYTES / (512 << 10)));
      spark
          .createDataFrame(
              JavaSparkContext.fromSparkContext(spark.sparkContext()).parallelize(list, slices),
              INPUT_SCHEMA)
          .write()
          .mode(SaveMode.Overwrite)
          .parquet(input.toString());
      job =
          InferJob.run(
              spark,
              new InferJob.Spec(
                  modelDir.toString(),
                  Map.of("layers", "mlp.up_proj,mlp.down_proj", "activation", "relu"),
                  input.toString(),
                  "parquet",
                  "features",
                  output.toString(),
                  "prediction"),
              out);
      for (Row row :
          spark.read().parquet(output.toString()).select("id", "prediction").collectAsList()) {
        List<Float> y = row.getList(1);
        int id = row.getInt(0);
        for (int j = 0; j < OUT; j++) {
          result[id * OUT + j] = y.get(j);
        }
      }
    }

    double[] ref = fp32Reference(model, data, rows);
    double maxRef = 0;
    double maxErr = 0;
    for (int i = 0; i < ref.length; i++) {
      maxRef = Math.max(maxRef, Math.abs(ref[i]));
      maxErr = Math.max(maxErr, Math.abs(result[i] - ref[i]));
    }
    out.printf(
        "demo: %d rows, %.0f rows/s, max relative error %.2e vs fp32 reference%n",
        rows, job.rowsPerSecond(), maxErr / maxRef);
    return 0;
  }

  private static final StructType INPUT_SCHEMA =
      new StructType()
          .add("id", DataTypes.IntegerType, false)
          .add("features", DataTypes.createArrayType(DataTypes.FloatType, false), false);

  private static void deleteRecursively(Path p) {
    if (!Files.exists(p)) {
      return;
    }
    try (Stream<Path> walk = Files.walk(p)) {
      for (Path f : walk.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(f);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static QuantizedLinear quantizedLayer(String name, int k, int n, Random r) {
    float[] w = new float[k * n];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) (r.nextGaussian() / Math.sqrt(k));
    }
    Int4WeightQuantizer.Result q = Int4WeightQuantizer.quantize(w, k, n, GROUP, true, DTYPE);
    float[] bias = new float[n];
    for (int i = 0; i < n; i++) {
      bias[i] = DTYPE.round((float) r.nextGaussian() * 0.1f);
    }
    LinearLayerConfig c =
        LinearLayerConfig.of(
            name, k, n, ScalarType.UINT4B8, DTYPE, GROUP, false, false, QuantScheme.W4A16);
    return new QuantizedLinear(
        c,
        PackedInt4Matrix.fromCodes(Int4Layout.K_N8, k, n, q.codes()),
        q.scales(),
        null,
        null,
        bias);
  }

  /**
   * fp32 math on the dequantized weights (each rounded to the model dtype), ReLU between layers.
   */
  private static double[] fp32Reference(List<QuantizedLinear> model, float[] data, int rows) {
    float[] x = data;
    int width = IN;
    for (int li = 0; li < model.size(); li++) {
      QuantizedLinear l = model.get(li);
      int k = l.config().k();
      int n = l.config().n();
      float[] w = new float[k * n];
      for (int kk = 0; kk < k; kk++) {
        for (int nn = 0; nn < n; nn++) {
          w[kk * n + nn] = DTYPE.round(l.value(kk, nn) * l.scales()[l.group(kk) * n + nn]);
        }
      }
      float[] y = new float[rows * n];
      for (int m = 0; m < rows; m++) {
        for (int nn = 0; nn < n; nn++) {
          float acc = l.bias()[nn];
          for (int kk = 0; kk < width; kk++) {
            acc += x[m * width + kk] * w[kk * n + nn];
          }
          y[m * n + nn] = li + 1 < model.size() ? Math.max(0f, acc) : acc;
        }
      }
      x = y;
      width = n;
    }
    double[] out = new double[x.length];
    for (int i = 0; i < x.length; i++) {
      out[i] = x[i];
    }
    return out;
  }
}
