package io.q4spark.jobs.bench;

import static org.apache.spark.sql.functions.callUDF;
import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.expr;

import io.q4spark.jobs.Main;
import io.q4spark.kernels.DType;
import io.q4spark.kernels.KernelOptions;
import io.q4spark.kernels.LinearLayerConfig;
import io.q4spark.kernels.Q4Linear;
import io.q4spark.kernels.QuantScheme;
import io.q4spark.kernels.QuantizedLinear;
import io.q4spark.kernels.format.CompressedTensorsCheckpoint;
import io.q4spark.kernels.format.QuantizationArgs;
import io.q4spark.spark.Q4;
import io.q4spark.spark.conf.Q4Conf;
import io.q4spark.spark.model.Q4Models;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.api.java.UDF1;
import org.apache.spark.sql.types.DataTypes;

/**
 * {@code q4spark bench spark}: what Spark costs on top of the kernel. One W4A16 layer (K = N =
 * 1024, G = 128, fp32 activations) over generated rows on {@code local[2]}, each variant timed end
 * to end, median of {@code reps}:
 *
 * <ul>
 *   <li>{@code generate}: the input pipeline alone (rows generated from their id by a SQL
 *       expression, written to Spark's {@code noop} sink), the part every variant shares;
 *   <li>{@code dataset}: the same rows through {@code Q4.apply} (the plugin, Arrow batches of
 *       {@code spark.q4.batch.rows});
 *   <li>{@code sql}: {@code SELECT q4_linear('bench', features)} where the SQL extension is on the
 *       classpath;
 *   <li>{@code udf}: a plain Java UDF calling the same kernel one row at a time, as a Spark job
 *       would without q4spark;
 *   <li>{@code kernel}: the raw kernel on the same number of batches of the same size, two threads
 *       (as {@code local[2]} runs two tasks), no Spark.
 * </ul>
 *
 * Spark's overhead of a path is {@code (path - generate - kernel) / kernel}. Kernels run with one
 * thread per call ({@code spark.q4.cpu.threads=1}) so that two tasks use the two cores, as the raw
 * kernel's two threads do.
 */
public final class SparkBench {
  static final String USAGE =
      "bench spark [--rows 1048576] [--k 1024] [--n 1024] [--group 128] [--batch 4096] [--reps 3]"
          + " [--udf-rows 65536] [--act f32|f16|bf16] [--quick]";

  /** Threads of the raw-kernel baseline and tasks of {@code local[2]}. */
  private static final int PARALLELISM = 2;

  private final PrintStream out;
  private int rows = 1 << 20;
  private int k = 1024;
  private int n = 1024;
  private int group = 128;
  private int batch = 4096;
  private int reps = 3;
  private int udfRows = 1 << 16;

  /**
   * The model's activation dtype: fp32 by default (the CPU kernels' fastest); fp16 or bf16 to run
   * on the CUDA kernels, which take 16-bit activations.
   */
  private DType act = DType.F32;

  SparkBench(String[] args, PrintStream out) throws Main.UsageException {
    this.out = out;
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (a.equals("--quick")) {
        rows = 1 << 14;
        udfRows = 1 << 11;
        reps = 1;
        continue;
      }
      if (i + 1 >= args.length) {
        throw new Main.UsageException(a + " needs a value; usage: " + USAGE);
      }
      if (a.equals("--act")) {
        String v = args[++i];
        act =
            switch (v) {
              case "f32", "float32" -> DType.F32;
              case "f16", "float16" -> DType.F16;
              case "bf16", "bfloat16" -> DType.BF16;
              default ->
                  throw new Main.UsageException(
                      "The value of --act should be one of f32, f16, bf16, but was " + v);
            };
        continue;
      }
      int v = CpuBenchOptions.positive(a, args[++i]);
      switch (a) {
        case "--rows" -> rows = v;
        case "--k" -> k = v;
        case "--n" -> n = v;
        case "--group" -> group = v;
        case "--batch" -> batch = v;
        case "--reps" -> reps = v;
        case "--udf-rows" -> udfRows = v;
        default -> throw new Main.UsageException("unknown argument '" + a + "'; usage: " + USAGE);
      }
    }
  }

  int run() throws IOException {
    Path dir = Files.createTempDirectory("q4spark-bench-spark");
    BenchWeights w = BenchWeights.random(k, n, group, 7);
    LinearLayerConfig config = w.config(QuantScheme.W4A16, act).withLayer("bench.proj");
    QuantizedLinear layer = new QuantizedLinear(config, w.codes(), w.scales(), null, null, null);
    CompressedTensorsCheckpoint.write(
        dir, new QuantizationArgs(QuantScheme.W4A16, true, group, false, act), List.of(layer), 1);

    double kernelMs = medianMs(() -> rawKernel(layer));
    String kernelName;
    try (Q4Linear q = Q4Linear.create(layer, KernelOptions.defaults().withThreads(1))) {
      kernelName = q.kernel();
    }
    SparkSession spark =
        SparkSession.builder()
            .appName("q4spark bench spark")
            .master("local[" + PARALLELISM + "]")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.plugins", Q4Conf.PLUGIN_CLASS)
            .config("spark.q4.cpu.threads", "1")
            .config("spark.q4.batch.rows", Integer.toString(batch))
            .config("spark.sql.extensions", "io.q4spark.spark.sql.Q4SqlExtensions")
            .getOrCreate();
    try {
      Q4Models.register(spark, "bench", dir.toString(), Map.of());
      Dataset<Row> input = input(spark, rows);
      double generateMs = medianMs(() -> input.write().format("noop").mode("overwrite").save());
      double datasetMs =
          medianMs(
              () ->
                  Q4.apply(input, "bench", "features", "y")
                      .select("y")
                      .write()
                      .format("noop")
                      .mode("overwrite")
                      .save());
      double sqlMs = Double.NaN;
      try {
        input.createOrReplaceTempView("bench_input");
        Dataset<Row> sql = spark.sql("SELECT q4_linear('bench', features) AS y FROM bench_input");
        sqlMs = medianMs(() -> sql.write().format("noop").mode("overwrite").save());
      } catch (RuntimeException e) {
        out.println("bench spark: the SQL path is not available: " + e.getMessage());
      }
      double udfMs = udf(spark, layer);

      out.printf(
          Locale.ROOT,
          "layer K=%d N=%d G=%d %s, %d rows, batches of %d, local[%d], median of %d, kernel %s%n",
          k,
          n,
          group,
          act,
          rows,
          batch,
          PARALLELISM,
          reps,
          kernelName);
      out.printf(Locale.ROOT, "%-10s %10s %12s %16s%n", "path", "ms", "rows/s", "Spark overhead");
      print("kernel", kernelMs, rows, Double.NaN);
      print("generate", generateMs, rows, Double.NaN);
      print("dataset", datasetMs, rows, (datasetMs - generateMs - kernelMs) / kernelMs);
      print("sql", sqlMs, rows, (sqlMs - generateMs - kernelMs) / kernelMs);
      double udfScaled = udfMs * rows / udfRows;
      out.printf(
          Locale.ROOT,
          "%-10s %10.0f %12.0f %16s   (%d rows, scaled to %d)%n",
          "udf",
          udfScaled,
          rows / (udfScaled / 1000),
          String.format(
              Locale.ROOT, "%.0f%%", 100 * (udfScaled - generateMs - kernelMs) / kernelMs),
          udfRows,
          rows);
    } finally {
      spark.stop();
      deleteQuietly(dir);
    }
    return 0;
  }

  private void print(String path, double ms, int count, double overhead) {
    out.printf(
        Locale.ROOT,
        "%-10s %10.0f %12.0f %16s%n",
        path,
        ms,
        count / (ms / 1000),
        Double.isNaN(overhead) ? "-" : String.format(Locale.ROOT, "%.1f%%", 100 * overhead));
  }

  /**
   * Rows of K floats generated from their id, the same in every variant. {@code array_repeat} is
   * compiled code, so generating a row costs little next to the layer (a {@code transform} lambda
   * would be interpreted per element and dwarf it); the kernel's time does not depend on values.
   */
  private Dataset<Row> input(SparkSession spark, int count) {
    return spark
        .range(0, count, 1, 4 * PARALLELISM)
        .select(
            col("id"),
            expr("array_repeat(cast((id % 97) / 97.0 - 0.5 as float), " + k + ")").as("features"));
  }

  /** The same batches through the kernel directly: PARALLELISM threads, one kernel thread each. */
  private void rawKernel(QuantizedLinear layer) {
    KernelOptions options = KernelOptions.defaults().withThreads(1);
    int batches = (rows + batch - 1) / batch;
    ExecutorService pool = Executors.newFixedThreadPool(PARALLELISM);
    try (Q4Linear q = Q4Linear.create(layer, options)) {
      SplittableRandom r = new SplittableRandom(3);
      float[] x = new float[batch * k];
      for (int i = 0; i < x.length; i++) {
        x[i] = (float) r.nextDouble();
      }
      List<Future<?>> done = new ArrayList<>();
      for (int t = 0; t < PARALLELISM; t++) {
        int first = t;
        done.add(
            pool.submit(
                () -> {
                  float[] y = new float[batch * n];
                  for (int b = first; b < batches; b += PARALLELISM) {
                    int m = Math.min(batch, rows - b * batch);
                    q.apply(x, m, y);
                  }
                }));
      }
      for (Future<?> f : done) {
        f.get();
      }
    } catch (Exception e) {
      throw new IllegalStateException("bench spark: the raw kernel failed: " + e, e);
    } finally {
      pool.shutdown();
    }
  }

  /** A plain Java UDF applying the layer one row at a time, on {@code udfRows} rows. */
  private double udf(SparkSession spark, QuantizedLinear layer) {
    RowwiseLayer.install(layer);
    spark
        .udf()
        .register(
            "rowwise_linear", new RowwiseUdf(), DataTypes.createArrayType(DataTypes.FloatType));
    Dataset<Row> in = input(spark, udfRows);
    return medianMs(
        () ->
            in.select(callUDF("rowwise_linear", col("features")).as("y"))
                .write()
                .format("noop")
                .mode("overwrite")
                .save());
  }

  /**
   * The UDF's layer, prepared once per JVM (a UDF would otherwise prepare it per row). The
   * benchmark runs on {@code local[2]}, so the driver's JVM is the executor's.
   */
  static final class RowwiseLayer {
    private static Q4Linear layer;

    static synchronized void install(QuantizedLinear l) {
      if (layer != null) {
        layer.close();
      }
      layer = Q4Linear.create(l, KernelOptions.defaults().withThreads(1));
    }

    static synchronized Q4Linear get() {
      return layer;
    }
  }

  /** A row-at-a-time UDF: the boxed array in, one kernel call for one row, the array out. */
  static final class RowwiseUdf implements UDF1<scala.collection.Seq<Float>, float[]> {
    private static final long serialVersionUID = 1L;

    @Override
    public float[] call(scala.collection.Seq<Float> features) {
      Q4Linear q = RowwiseLayer.get();
      int k = q.config().k();
      float[] x = new float[k];
      for (int i = 0; i < k; i++) {
        x[i] = features.apply(i);
      }
      return q.apply(x, 1);
    }
  }

  private double medianMs(Runnable work) {
    work.run(); // warm-up: JIT, kernel preparation, Spark's code generation
    double[] ms = new double[reps];
    for (int i = 0; i < reps; i++) {
      long start = System.nanoTime();
      work.run();
      ms[i] = (System.nanoTime() - start) / 1e6;
    }
    return new Quantiles(ms).at(0.5);
  }

  private static void deleteQuietly(Path dir) {
    try (var walk = Files.walk(dir)) {
      walk.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
