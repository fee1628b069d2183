package io.q4spark.jobs.bench;

import io.q4spark.jobs.Main;
import java.io.PrintStream;
import java.util.Arrays;

/**
 * {@code q4spark bench <target> [options]}: benchmarks: {@code cpu} ({@link CpuBench}), {@code gpu}
 * ({@link GpuBench}) and {@code spark} ({@link SparkBench}).
 */
public final class BenchCommand implements Main.Command {
  private static final String USAGE =
      "usage: bench cpu [options] | bench gpu [options] | bench spark [options]; "
          + CpuBenchOptions.USAGE
          + "; "
          + GpuBenchOptions.USAGE
          + "; "
          + SparkBench.USAGE;

  @Override
  public String summary() {
    return "time the kernels against ONNX Runtime (bench cpu), cuBLAS (bench gpu), or Spark's"
        + " overhead (bench spark)";
  }

  @Override
  public int run(String[] args, PrintStream out) throws Main.UsageException {
    if (args.length == 0) {
      throw new Main.UsageException("missing target; " + USAGE);
    }
    String[] rest = Arrays.copyOfRange(args, 1, args.length);
    if (args[0].equals("spark")) {
      try {
        return new SparkBench(rest, out).run();
      } catch (java.io.IOException e) {
        throw new java.io.UncheckedIOException("bench spark failed: " + e.getMessage(), e);
      }
    }
    if (args[0].equals("gpu")) {
      try {
        return new GpuBench(GpuBenchOptions.parse(rest), out).run();
      } catch (java.io.IOException e) {
        throw new java.io.UncheckedIOException("bench gpu failed: " + e.getMessage(), e);
      }
    }
    if (!args[0].equals("cpu")) {
      throw new Main.UsageException("unknown target '" + args[0] + "'; " + USAGE);
    }
    CpuBenchOptions options = CpuBenchOptions.parse(rest);
    try {
      return new CpuBench(options, out).run(rest);
    } catch (RuntimeException e) {
      throw e;
    } catch (Exception e) {
      throw new IllegalStateException("bench cpu failed: " + e.getMessage(), e);
    }
  }
}
