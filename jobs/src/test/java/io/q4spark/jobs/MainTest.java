package io.q4spark.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MainTest {
  private record Run(int status, String out, String err) {}

  private static Run run(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int status =
        Main.run(
            args,
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8));
    return new Run(
        status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  @Test
  void unknownCommandIsOneLineAndStatusTwo() {
    Run r = run("frobnicate");
    assertEquals(2, r.status());
    assertEquals(
        "q4spark: unknown command 'frobnicate'; commands: bench, check-golden, demo, doctor, infer\n",
        r.err());
  }

  @Test
  void checkGoldenNeedsAnExistingDirectory() {
    Run r = run("check-golden");
    assertEquals(2, r.status());
    assertEquals(
        "q4spark check-golden: missing DIR: usage: check-golden DIR [--show-skips]\n", r.err());
    r = run("check-golden", "/no/such/dir");
    assertEquals(2, r.status());
    assertEquals("q4spark check-golden: no such directory: /no/such/dir\n", r.err());
  }

  @Test
  void checkGoldenFailsOnAFolderWithoutGoldenFiles(@TempDir Path empty) {
    Run r = run("check-golden", empty.toString());
    assertEquals(1, r.status());
    assertEquals("no golden .safetensors file in " + empty + "\n", r.out());
  }

  @Test
  void doctorShowsTheSelectionWithEveryReason() {
    Run r = run("doctor", "--k", "4096", "--n", "4096", "--group", "128", "--act-order");
    assertEquals(0, r.status(), r.err());
    assertTrue(r.out().contains("Kernels, in selection priority order:"), r.out());
    assertTrue(
        r.out()
            .contains(
                "layer doctor W4A16 K=4096 N=4096 weight=uint4b8 act=float16 group=128 act-order: using SimdW4A16Kernel"),
        r.out());
    assertTrue(
        r.out()
            .contains(
                "  TiledW4A16Kernel: Activation reordering (g_idx) is not supported by TiledW4A16Kernel"),
        r.out());
    assertTrue(r.out().contains("ScalarW4A8Kernel: ScalarW4A8Kernel implements W4A8"), r.out());
    // The CUDA backend's status: why not (here, no driver), or what it compiled for.
    assertTrue(
        r.out().contains("  cuda         unavailable: libcuda not found: tried")
            || r.out().contains("; kernels compiled for sm_"),
        r.out());
    assertTrue(
        r.out().contains("  CudaW4A16Kernel: CudaW4A16Kernel needs a CUDA GPU: ")
            || r.out().contains("  CudaW4A16Kernel: can implement"),
        r.out());
  }

  @Test
  void doctorReportsWhenNothingFitsAndRejectsBadValues() {
    Run r = run("doctor", "--k", "256", "--n", "100");
    assertEquals(1, r.status());
    assertTrue(
        r.out().contains("Failed to find a kernel that can implement the W4A16 linear layer"),
        r.out());
    r = run("doctor", "--k", "-5", "--n", "8");
    assertEquals(2, r.status());
    assertEquals(
        "q4spark doctor: The value of --k should be a positive integer, but was -5\n", r.err());
  }

  @Test
  void demoEndsWithItsSummaryLine(@TempDir Path dir) {
    Run r = run("demo", "--rows", "300", "--dir", dir.toString());
    assertEquals(0, r.status(), r.err());
    String[] lines = r.out().strip().split("\n");
    String last = lines[lines.length - 1];
    assertTrue(
        last.matches(
            "demo: 300 rows, \\d+ rows/s, max relative error \\d\\.\\d\\de-\\d\\d vs fp32 reference"),
        last);
    double err = Double.parseDouble(last.replaceAll(".*max relative error (\\S+) vs.*", "$1"));
    assertTrue(err < 1e-2, "fp16 outputs stay within a percent of the fp32 reference: " + err);
  }
}
