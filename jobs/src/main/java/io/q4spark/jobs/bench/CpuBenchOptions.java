package io.q4spark.jobs.bench;

import io.q4spark.jobs.Main;
import io.q4spark.kernels.DType;
import io.q4spark.kernels.KernelCatalog;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * The options of {@code bench cpu}.
 *
 * @param threads threads per call, for every backend (and for the bandwidth measurement)
 * @param shapes the shapes, each with its rows and modes
 * @param acts activation dtypes our kernels run in (the peers always take fp32)
 * @param kernels kernels named by {@code --kernels}, or null for every kernel but the scalar
 *     references
 * @param quick a few iterations only, for tests: the numbers mean nothing
 * @param json where to write every measurement, or null
 */
record CpuBenchOptions(
    int threads,
    List<BenchShape> shapes,
    List<DType> acts,
    Set<String> kernels,
    boolean quick,
    Path json) {

  static final String USAGE =
      "usage: bench cpu [--threads N] [--shapes LIST] [--m M1,M2] [--modes hot,cold]"
          + " [--act f32,f16,bf16] [--kernels K1,K2] [--quick] [--json FILE]";

  /** Two threads: the CI machine's cores. */
  static final int DEFAULT_THREADS = 2;

  static CpuBenchOptions parse(String[] args) throws Main.UsageException {
    int threads = DEFAULT_THREADS;
    String shapes = "all";
    List<Integer> rows = null;
    List<BenchShape.Mode> modes = null;
    List<DType> acts = List.of(DType.F32);
    Set<String> kernels = null;
    boolean quick = false;
    Path json = null;
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (a.equals("--quick")) {
        quick = true;
        continue;
      }
      if (!Set.of("--threads", "--shapes", "--m", "--modes", "--act", "--kernels", "--json")
          .contains(a)) {
        throw new Main.UsageException("unknown argument '" + a + "'; " + USAGE);
      }
      if (i + 1 >= args.length) {
        throw new Main.UsageException(a + " needs a value; " + USAGE);
      }
      String v = args[++i];
      try {
        switch (a) {
          case "--threads" -> threads = positive(a, v);
          case "--shapes" -> shapes = v;
          case "--m" -> {
            rows = new ArrayList<>();
            for (String s : list(v)) {
              rows.add(positive(a, s));
            }
          }
          case "--modes" -> modes = list(v).stream().map(BenchShape.Mode::parse).toList();
          case "--act" -> acts = list(v).stream().map(DType::parse).distinct().toList();
          case "--kernels" -> {
            kernels = new LinkedHashSet<>(list(v));
            for (String k : kernels) {
              if (!KernelCatalog.names().contains(k)) {
                throw new Main.UsageException(
                    "The value of --kernels should name kernels among "
                        + KernelCatalog.names()
                        + ", but was "
                        + v);
              }
            }
          }
          case "--json" -> json = Path.of(v);
          default -> throw new AssertionError(a);
        }
      } catch (IllegalArgumentException e) {
        throw new Main.UsageException(e.getMessage());
      }
    }
    List<BenchShape> selected;
    try {
      selected = BenchShape.select(shapes);
    } catch (IllegalArgumentException e) {
      throw new Main.UsageException(e.getMessage());
    }
    List<Integer> r = rows;
    List<BenchShape.Mode> m = modes;
    selected = selected.stream().map(s -> s.with(r, m)).toList();
    if (modes != null && modes.isEmpty() || rows != null && rows.isEmpty() || acts.isEmpty()) {
      throw new Main.UsageException("--m, --modes and --act need at least one value; " + USAGE);
    }
    return new CpuBenchOptions(threads, selected, acts, kernels, quick, json);
  }

  private static List<String> list(String v) {
    return java.util.Arrays.stream(v.split(","))
        .map(String::trim)
        .filter(s -> !s.isEmpty())
        .toList();
  }

  static int positive(String key, String v) throws Main.UsageException {
    try {
      int i = Integer.parseInt(v.trim());
      if (i > 0) {
        return i;
      }
    } catch (NumberFormatException e) {
      // reported below
    }
    throw new Main.UsageException(
        "The value of " + key + " should be a positive integer, but was " + v);
  }
}
