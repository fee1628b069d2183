package io.q4spark.jobs;

import io.q4spark.kernels.conformance.GoldenConformance;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * {@code q4spark check-golden DIR [--show-skips]}: every golden vector in DIR through every
 * available kernel from every layout it holds; one row per (file, layout, kernel), then {@code N
 * passed, M failed}. Exits 1 when anything failed or DIR holds no golden file.
 */
final class CheckGoldenCommand implements Main.Command {
  @Override
  public String summary() {
    return "run golden test vectors (DIR) through every available kernel";
  }

  @Override
  public int run(String[] args, PrintStream out) throws Main.UsageException {
    Path dir = null;
    boolean showSkips = false;
    for (String a : args) {
      if (a.equals("--show-skips")) {
        showSkips = true;
      } else if (a.startsWith("-")) {
        throw new Main.UsageException(
            "unknown option " + a + "; usage: check-golden DIR [--show-skips]");
      } else if (dir == null) {
        dir = Path.of(a);
      } else {
        throw new Main.UsageException("one directory expected, got also " + a);
      }
    }
    if (dir == null) {
      throw new Main.UsageException("missing DIR: usage: check-golden DIR [--show-skips]");
    }
    if (!Files.isDirectory(dir)) {
      throw new Main.UsageException("no such directory: " + dir);
    }
    int failed = GoldenConformance.runAll(dir, out, showSkips);
    return failed == 0 ? 0 : 1;
  }
}
