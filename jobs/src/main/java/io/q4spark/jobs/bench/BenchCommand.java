package io.q4spark.jobs.bench;

import io.q4spark.jobs.Main;
import java.io.PrintStream;
import java.util.Arrays;

/**
 * {@code q4spark bench <target> [options]}: benchmarks. One target so far, {@code cpu} ({@link
 * CpuBench}).
 */
public final class BenchCommand implements Main.Command {
  private static final String USAGE = "usage: bench cpu [options]; " + CpuBenchOptions.USAGE;

  @Override
  public String summary() {
    return "time the kernels side by side with ONNX Runtime (bench cpu)";
  }

  @Override
  public int run(String[] args, PrintStream out) throws Main.UsageException {
    if (args.length == 0) {
      throw new Main.UsageException("missing target; " + USAGE);
    }
    if (!args[0].equals("cpu")) {
      throw new Main.UsageException("unknown target '" + args[0] + "'; " + USAGE);
    }
    String[] rest = Arrays.copyOfRange(args, 1, args.length);
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
