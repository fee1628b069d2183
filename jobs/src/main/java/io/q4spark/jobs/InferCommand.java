package io.q4spark.jobs;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * {@code q4spark infer --model DIR --input PATH --output PATH [options]}: applies a quantized model
 * (a compressed-tensors or GPTQ checkpoint directory) to the features column of a Parquet, CSV or
 * JSON input and writes Parquet, through Spark with the q4spark plugin. Prints rows/s. Exit status
 * 0 on success, 2 for bad arguments, 1 when the job failed (nothing is left at the output path).
 */
final class InferCommand implements Main.Command {
  static final String USAGE =
      "usage: infer --model DIR --input PATH --output PATH [--format parquet|csv|json]"
          + " [--column features] [--output-column prediction] [--layers L1,L2]"
          + " [--activation none|relu|gelu|silu] [--master URL] [--conf KEY=VALUE]...";

  @Override
  public String summary() {
    return "apply a quantized model to a features column (Parquet, CSV or JSON) -> Parquet";
  }

  @Override
  public int run(String[] args, PrintStream out) throws Main.UsageException {
    Map<String, String> opts = new HashMap<>();
    Map<String, String> conf = new LinkedHashMap<>();
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      switch (a) {
        case "--model",
            "--input",
            "--output",
            "--format",
            "--column",
            "--output-column",
            "--layers",
            "--activation",
            "--master",
            "--conf" -> {
          if (i + 1 >= args.length) {
            throw new Main.UsageException(a + " needs a value; " + USAGE);
          }
          String v = args[++i];
          if (a.equals("--conf")) {
            int eq = v.indexOf('=');
            if (eq <= 0) {
              throw new Main.UsageException(
                  "The value of --conf should be KEY=VALUE, but was " + v);
            }
            conf.put(v.substring(0, eq), v.substring(eq + 1));
          } else {
            opts.put(a, v);
          }
        }
        default -> throw new Main.UsageException("unknown argument '" + a + "'; " + USAGE);
      }
    }
    for (String required : new String[] {"--model", "--input", "--output"}) {
      if (!opts.containsKey(required)) {
        throw new Main.UsageException("missing " + required + "; " + USAGE);
      }
    }
    if (!Files.isDirectory(Path.of(opts.get("--model")))) {
      throw new Main.UsageException("no such model directory: " + opts.get("--model"));
    }
    Map<String, String> modelOptions = new HashMap<>();
    if (opts.containsKey("--layers")) {
      modelOptions.put("layers", opts.get("--layers"));
    }
    if (opts.containsKey("--activation")) {
      modelOptions.put("activation", opts.get("--activation"));
    }
    String input = opts.get("--input");
    InferJob.Spec spec =
        new InferJob.Spec(
            opts.get("--model"),
            modelOptions,
            input,
            opts.getOrDefault("--format", formatOf(input)).toLowerCase(Locale.ROOT),
            opts.getOrDefault("--column", "features"),
            opts.get("--output"),
            opts.getOrDefault("--output-column", "prediction"));
    InferJob.Session session;
    try {
      session = InferJob.session("q4spark infer", opts.get("--master"), conf);
    } catch (RuntimeException e) {
      throw new Main.UsageException(InferJob.rootMessage(e));
    }
    try (session) {
      InferJob.Result r = InferJob.run(session.spark(), spec, out);
      out.printf(
          Locale.ROOT,
          "infer: %d rows in %.1f s, %.0f rows/s -> %s%n",
          r.rows(),
          r.seconds(),
          r.rowsPerSecond(),
          spec.output());
      return 0;
    } catch (Main.UsageException e) {
      throw e;
    } catch (Exception e) {
      // SparkException is checked but thrown undeclared from Scala code. A failed job (a bad row, a
      // lost executor past its retries): one line, nothing written.
      out.println("infer: failed: " + InferJob.rootMessage(e));
      return 1;
    }
  }

  /** The format a path's extension names; Parquet otherwise (directories included). */
  static String formatOf(String path) {
    String p = path.toLowerCase(Locale.ROOT).replaceAll("/+$", "");
    if (p.endsWith(".csv")) {
      return "csv";
    }
    if (p.endsWith(".json") || p.endsWith(".jsonl")) {
      return "json";
    }
    return "parquet";
  }
}
