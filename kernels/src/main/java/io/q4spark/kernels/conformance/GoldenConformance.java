package io.q4spark.kernels.conformance;

import io.q4spark.kernels.Acceptance;
import io.q4spark.kernels.DType;
import io.q4spark.kernels.Int8ActivationStage;
import io.q4spark.kernels.KernelCatalog;
import io.q4spark.kernels.LinearKernel;
import io.q4spark.kernels.PreparedLinear;
import io.q4spark.kernels.QuantScheme;
import io.q4spark.kernels.QuantizedLinear;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

/**
 * Runs golden vectors through every kernel that can implement them, from every layout the file
 * holds, and judges each run by the golden README's tolerances:
 *
 * <ul>
 *   <li>vLLM's output ({@code output_vllm_triton} / {@code output_fp16}): {@code |ours - vllm| <=
 *       atol + rtol * |vllm|} with {@link #VLLM_RTOL} = {@link #VLLM_ATOL} = 1e-2, vLLM's own test
 *       tolerance;
 *   <li>the high-precision reference: {@code max|ours - ref| / max|ref|} within one rounding of the
 *       output dtype ({@link #referenceTolerance});
 *   <li>W4A8: the kernel's activation codes and scales equal the expected ones bit for bit.
 * </ul>
 */
public final class GoldenConformance {
  /** vLLM's test tolerance for its W4A16 kernels (rtol = atol = 1e-2). */
  public static final double VLLM_RTOL = 1e-2;

  public static final double VLLM_ATOL = 1e-2;

  private GoldenConformance() {}

  /**
   * Error relative to the largest reference output that one rounding of the output dtype allows:
   * fp16 keeps 11 significant bits (2^-11 ~ 4.9e-4 per rounding, two roundings with the bias:
   * 1e-3), bf16 keeps 8 (2^-8 ~ 3.9e-3, two roundings: 8e-3); fp32 is held to the fp16 bound.
   */
  public static double referenceTolerance(DType outType) {
    return outType == DType.BF16 ? 8e-3 : 1e-3;
  }

  /** One (file, layout, kernel) run. */
  public record Result(
      String file,
      String layout,
      String kernel,
      boolean ran,
      boolean passed,
      double maxAbsVsVllm,
      double allcloseRatio,
      double relVsReference,
      String detail) {

    public String row() {
      if (!ran) {
        return String.format("%-48s %-18s %-18s SKIP  %s", file, layout, kernel, detail);
      }
      return String.format(
          "%-48s %-18s %-18s %s  vllm max|d|=%.3e allclose=%.2f  ref rel=%.2e%s",
          file,
          layout,
          kernel,
          passed ? "PASS" : "FAIL",
          maxAbsVsVllm,
          allcloseRatio,
          relVsReference,
          detail.isEmpty() ? "" : "  " + detail);
    }
  }

  /** The golden files in {@code dir}, sorted. */
  public static List<Path> files(Path dir) {
    if (!Files.isDirectory(dir)) {
      return List.of();
    }
    try (Stream<Path> s = Files.list(dir)) {
      return s.filter(p -> p.getFileName().toString().endsWith(".safetensors")).sorted().toList();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Every layout of {@code file} through every kernel. */
  public static List<Result> run(Path file) {
    List<Result> results = new ArrayList<>();
    try (GoldenCase c = GoldenCase.open(file)) {
      for (GoldenCase.Layout layout : c.layouts()) {
        QuantizedLinear layer;
        try {
          layer = layout.reader().get();
        } catch (RuntimeException e) {
          results.add(
              new Result(
                  c.fileName(),
                  layout.name(),
                  "-",
                  true,
                  false,
                  0,
                  0,
                  0,
                  "read failed: " + e.getMessage()));
          continue;
        }
        for (KernelCatalog.Entry entry : KernelCatalog.PRIORITY) {
          results.add(runOne(c, layout.name(), layer, entry));
        }
      }
    }
    return results;
  }

  private static Result runOne(
      GoldenCase c, String layout, QuantizedLinear layer, KernelCatalog.Entry entry) {
    LinearKernel kernel;
    try {
      kernel = KernelCatalog.load(entry);
    } catch (KernelCatalog.KernelUnavailableException e) {
      return skipped(c, layout, entry.name(), e.getMessage());
    }
    Acceptance a = kernel.canImplement(layer.config());
    if (!a.accepted()) {
      return skipped(c, layout, entry.name(), a.reason());
    }
    int rows = c.rows();
    int n = layer.config().n();
    float[] x = c.input();
    float[] out = new float[rows * n];
    List<String> problems = new ArrayList<>();
    try (PreparedLinear p = kernel.prepare(layer)) {
      p.apply(x, rows, layer.bias(), out);
      if (c.scheme() == QuantScheme.W4A8) {
        if (p instanceof Int8ActivationStage stage) {
          byte[] codes = new byte[x.length];
          float[] scales = new float[rows];
          stage.quantizeActivations(x, rows, codes, scales);
          if (!Arrays.equals(codes, c.expectedActivationCodes())) {
            problems.add(
                "activation codes differ at "
                    + Arrays.mismatch(codes, c.expectedActivationCodes()));
          }
          if (!Arrays.equals(scales, c.expectedActivationScales())) {
            problems.add(
                "activation scales differ at row "
                    + Arrays.mismatch(scales, c.expectedActivationScales()));
          }
        } else {
          problems.add(
              entry.name() + " does not expose its activation stage (Int8ActivationStage)");
        }
      }
    } catch (RuntimeException e) {
      return new Result(c.fileName(), layout, entry.name(), true, false, 0, 0, 0, "failed: " + e);
    }
    float[] vllm = c.expectedOutput();
    double maxAbs = 0;
    double ratio = 0;
    for (int i = 0; i < out.length; i++) {
      double d = Math.abs((double) out[i] - vllm[i]);
      maxAbs = Math.max(maxAbs, Double.isNaN(d) ? Double.POSITIVE_INFINITY : d);
      ratio = Math.max(ratio, d / (VLLM_ATOL + VLLM_RTOL * Math.abs(vllm[i])));
      if (Double.isNaN(d)) {
        ratio = Double.POSITIVE_INFINITY;
      }
    }
    double[] ref = c.referenceOutput();
    double maxRef = 0;
    double maxErr = 0;
    for (int i = 0; i < out.length; i++) {
      maxRef = Math.max(maxRef, Math.abs(ref[i]));
      double d = Math.abs(out[i] - ref[i]);
      maxErr = Math.max(maxErr, Double.isNaN(d) ? Double.POSITIVE_INFINITY : d);
    }
    double rel = maxRef == 0 ? maxErr : maxErr / maxRef;
    double tol = referenceTolerance(layer.config().outType());
    if (ratio > 1) {
      problems.add("outside vLLM's rtol=atol=1e-2");
    }
    if (rel > tol) {
      problems.add(String.format("reference error above %.0e", tol));
    }
    return new Result(
        c.fileName(),
        layout,
        entry.name(),
        true,
        problems.isEmpty(),
        maxAbs,
        ratio,
        rel,
        String.join("; ", problems));
  }

  private static Result skipped(GoldenCase c, String layout, String kernel, String reason) {
    return new Result(c.fileName(), layout, kernel, false, false, 0, 0, 0, reason);
  }

  /**
   * Runs every golden file in {@code dir}, printing one row per (file, layout, kernel) and the
   * closing {@code N passed, M failed} line; skipped rows (a kernel that cannot implement the
   * file's layer) are printed with the reason when {@code showSkips}. Returns the number of
   * failures, or -1 when {@code dir} holds no golden file.
   */
  public static int runAll(Path dir, PrintStream out, boolean showSkips) {
    List<Path> files = files(dir);
    if (files.isEmpty()) {
      out.println("no golden .safetensors file in " + dir);
      return -1;
    }
    int passed = 0;
    int failed = 0;
    for (Path f : files) {
      List<Result> results;
      try {
        results = run(f);
      } catch (RuntimeException e) {
        out.printf("%-48s FAIL  cannot read: %s%n", f.getFileName(), e.getMessage());
        failed++;
        continue;
      }
      for (Result r : results) {
        if (r.ran()) {
          if (r.passed()) {
            passed++;
          } else {
            failed++;
          }
        }
        if (r.ran() || showSkips) {
          out.println(r.row());
        }
      }
    }
    out.println(passed + " passed, " + failed + " failed");
    return failed;
  }
}
