package io.q4spark.jobs;

import io.q4spark.spark.Q4;
import io.q4spark.spark.Q4SparkPlugin;
import io.q4spark.spark.arrow.InputColumn;
import io.q4spark.spark.model.Q4Models;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.util.Arrays;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.NumericType;
import org.apache.spark.sql.types.StringType;

/**
 * The work behind {@code q4spark infer} (and the demo): registers the model, reads the input,
 * applies the model to the features column and writes Parquet to a temporary directory beside the
 * output, renamed to the output only when the whole write succeeded, so a failed job never leaves
 * output that looks complete.
 */
final class InferJob {
  /** Where a CSV features column separates its numbers (CSV itself separates with commas). */
  static final String CSV_FEATURE_SEPARATOR = "[ ;]+";

  /**
   * @param model checkpoint directory
   * @param modelOptions {@code Q4Models.register} options (layers, activation, ...)
   * @param input input path
   * @param format parquet, csv or json
   * @param column the features column
   * @param output the output path (must not exist)
   * @param outputColumn the column appended
   */
  record Spec(
      String model,
      Map<String, String> modelOptions,
      String input,
      String format,
      String column,
      String output,
      String outputColumn) {}

  /** What a run did. */
  record Result(long rows, double seconds) {
    double rowsPerSecond() {
      return rows / Math.max(seconds, 1e-9);
    }
  }

  private InferJob() {}

  /** A session and whether this job started it (and so stops it). */
  record Session(SparkSession spark, boolean owned) implements AutoCloseable {
    @Override
    public void close() {
      if (owned) {
        spark.stop();
      }
    }
  }

  /**
   * The running session when there is one (spark-submit, a test), else a new one with the q4spark
   * plugin on {@code master}, by default {@code local[*]} (the embedded run of {@code
   * bin/q4spark}).
   */
  static Session session(String appName, String master, Map<String, String> conf) {
    scala.Option<SparkSession> running = SparkSession.getDefaultSession();
    if (running.isDefined() && !running.get().sparkContext().isStopped()) {
      return new Session(running.get(), false);
    }
    return new Session(start(appName, master, conf), true);
  }

  private static SparkSession start(String appName, String master, Map<String, String> conf) {
    SparkSession.Builder b =
        SparkSession.builder()
            .appName(appName)
            .config("spark.plugins", Q4SparkPlugin.class.getName())
            .config("spark.ui.showConsoleProgress", "false");
    if (master != null) {
      b.master(master);
    } else if (System.getProperty("spark.master") == null) {
      b.master("local[*]").config("spark.ui.enabled", "false");
    }
    conf.forEach(b::config);
    return b.getOrCreate();
  }

  /**
   * The message of the configuration error behind a failed session start (the plugin's validation
   * of a {@code spark.q4.*} key), else of the outermost exception.
   */
  static String rootMessage(Throwable t) {
    for (Throwable c = t; c != null; c = c.getCause()) {
      if (c instanceof IllegalArgumentException || c instanceof IllegalStateException) {
        return c.getMessage();
      }
    }
    return t.toString();
  }

  /** Reads the input with its features column as {@code array<float>} or {@code array<double>}. */
  static Dataset<Row> read(SparkSession spark, Spec spec) throws Main.UsageException {
    Dataset<Row> df =
        switch (spec.format()) {
          case "parquet" -> spark.read().parquet(spec.input());
          case "json" -> spark.read().json(spec.input());
          case "csv" -> spark.read().option("header", "true").csv(spec.input());
          default ->
              throw new Main.UsageException(
                  "The value of --format should be one of [parquet, csv, json], but was "
                      + spec.format());
        };
    if (!Arrays.asList(df.columns()).contains(spec.column())) {
      throw new Main.UsageException(
          "input "
              + spec.input()
              + " has no column '"
              + spec.column()
              + "'; its columns are "
              + Arrays.toString(df.columns())
              + " (--column names the features column)");
    }
    DataType type = df.schema().apply(spec.column()).dataType();
    if (type instanceof StringType && spec.format().equals("csv")) {
      // CSV has no arrays: the features are numbers separated by spaces or semicolons.
      df =
          df.withColumn(
              spec.column(),
              functions
                  .split(functions.trim(functions.col(spec.column())), CSV_FEATURE_SEPARATOR)
                  .cast(DataTypes.createArrayType(DataTypes.FloatType)));
    } else if (type instanceof ArrayType a
        && a.elementType() instanceof NumericType
        && !a.elementType().equals(DataTypes.FloatType)
        && !a.elementType().equals(DataTypes.DoubleType)) {
      // JSON numbers without a fraction are read as bigint.
      df =
          df.withColumn(
              spec.column(),
              functions.col(spec.column()).cast(DataTypes.createArrayType(DataTypes.FloatType)));
    }
    try {
      InputColumn.resolve(df.schema(), spec.column(), "input " + spec.input());
    } catch (IllegalArgumentException e) {
      throw new Main.UsageException(e.getMessage());
    }
    return df;
  }

  /** Runs the job, printing progress to {@code out}. */
  static Result run(SparkSession spark, Spec spec, PrintStream out) throws Main.UsageException {
    Configuration hadoop = spark.sparkContext().hadoopConfiguration();
    Path output = new Path(spec.output());
    FileSystem fs;
    try {
      fs = output.getFileSystem(hadoop);
      Path input = new Path(spec.input());
      if (!input.getFileSystem(hadoop).exists(input)) {
        throw new Main.UsageException("no such input: " + spec.input());
      }
      if (fs.exists(output)) {
        throw new Main.UsageException(
            "output " + spec.output() + " exists already: remove it or choose another path");
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    // Messages name the model by its directory; the registry entry lives for this job only.
    String name = new Path(spec.model()).getName();
    try {
      Q4Models.register(spark, name, spec.model(), spec.modelOptions());
    } catch (IllegalArgumentException e) {
      throw new Main.UsageException(e.getMessage());
    }
    // Not hidden (a leading dot or underscore would make Spark skip it when counting the rows).
    Path tmp = new Path(output.getParent(), output.getName() + ".inprogress-" + UUID.randomUUID());
    try {
      Dataset<Row> df = read(spark, spec);
      out.printf(
          Locale.ROOT,
          "infer: model %s on %s (%s, column %s), %d partitions -> %s%n",
          spec.model(),
          spec.input(),
          spec.format(),
          spec.column(),
          df.rdd().getNumPartitions(),
          spec.output());
      long start = System.nanoTime();
      Q4.apply(df, name, spec.column(), spec.outputColumn()).write().parquet(tmp.toString());
      double seconds = (System.nanoTime() - start) / 1e9;
      long rows = spark.read().parquet(tmp.toString()).count();
      if (!fs.rename(tmp, output)) {
        throw new IOException("could not rename " + tmp + " to " + output);
      }
      return new Result(rows, seconds);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } finally {
      Q4Models.unregister(name);
      try {
        fs.delete(tmp, true);
      } catch (IOException e) {
        out.println("infer: could not remove the temporary output " + tmp + ": " + e);
      }
    }
  }
}
