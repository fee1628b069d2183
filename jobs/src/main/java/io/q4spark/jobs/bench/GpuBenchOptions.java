package io.q4spark.jobs.bench;

import io.q4spark.jobs.Main;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Options of {@code bench gpu}.
 *
 * @param shapes K x N of each layer
 * @param rows the M values
 * @param group G
 * @param backends which of {@code w4a16}, {@code w4a8}, {@code cublas} to run
 * @param reps timed repetitions per row (each one sample)
 * @param calls calls per repetition (at least the number of weight copies)
 * @param json where to write every measurement, or null
 */
record GpuBenchOptions(
    List<int[]> shapes,
    int[] rows,
    int group,
    List<String> backends,
    int reps,
    int calls,
    Path json) {

  static final String USAGE =
      "bench gpu [--shapes 4096x4096,4096x6144,4096x14336,14336x4096]"
          + " [--m 1,16,64,256,1024,8192] [--group 128] [--backends w4a16,w4a8,cublas]"
          + " [--reps 20] [--calls 20] [--quick] [--json FILE]";

  /** Llama-3-8B's projections: q/o (4096x4096), k/v fused-ish (4096x6144), MLP up and down. */
  static final String DEFAULT_SHAPES = "4096x4096,4096x6144,4096x14336,14336x4096";

  static final String DEFAULT_ROWS = "1,16,64,256,1024,8192";

  static final List<String> BACKENDS = List.of("w4a16", "w4a8", "cublas");

  static GpuBenchOptions parse(String[] args) throws Main.UsageException {
    String shapes = DEFAULT_SHAPES;
    String rows = DEFAULT_ROWS;
    int group = 128;
    String backends = String.join(",", BACKENDS);
    int reps = 20;
    int calls = 20;
    Path json = null;
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (a.equals("--quick")) {
        reps = 3;
        calls = 4;
        continue;
      }
      if (i + 1 >= args.length) {
        throw new Main.UsageException(a + " needs a value; usage: " + USAGE);
      }
      String v = args[++i];
      switch (a) {
        case "--shapes" -> shapes = v;
        case "--m" -> rows = v;
        case "--group" -> group = CpuBenchOptions.positive(a, v);
        case "--backends" -> backends = v;
        case "--reps" -> reps = CpuBenchOptions.positive(a, v);
        case "--calls" -> calls = CpuBenchOptions.positive(a, v);
        case "--json" -> json = Path.of(v);
        default -> throw new Main.UsageException("unknown argument '" + a + "'; usage: " + USAGE);
      }
    }
    List<int[]> shapeList = new ArrayList<>();
    for (String s : shapes.split(",")) {
      String[] kn = s.trim().split("x");
      if (kn.length != 2) {
        throw new Main.UsageException(
            "The value of --shapes should be KxN pairs such as 4096x14336, but was " + s);
      }
      shapeList.add(
          new int[] {
            CpuBenchOptions.positive("--shapes", kn[0]), CpuBenchOptions.positive("--shapes", kn[1])
          });
    }
    String[] rowValues = rows.split(",");
    int[] m = new int[rowValues.length];
    for (int i = 0; i < m.length; i++) {
      m[i] = CpuBenchOptions.positive("--m", rowValues[i]);
    }
    List<String> b = Arrays.stream(backends.split(",")).map(String::trim).toList();
    for (String x : b) {
      if (!BACKENDS.contains(x)) {
        throw new Main.UsageException(
            "The value of --backends should be among " + BACKENDS + ", but was " + x);
      }
    }
    return new GpuBenchOptions(shapeList, m, group, b, reps, calls, json);
  }
}
