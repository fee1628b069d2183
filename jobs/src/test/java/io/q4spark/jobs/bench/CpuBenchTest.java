package io.q4spark.jobs.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.q4spark.jobs.Main;
import io.q4spark.kernels.KernelCatalog;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code bench cpu --quick} end to end: the table, the JSON report, and the usage errors. */
class CpuBenchTest {
  private static final List<String> FIELDS =
      List.of(
          "backend",
          "kernel",
          "act",
          "mode",
          "m",
          "k",
          "n",
          "g",
          "threads",
          "median_ms",
          "p10_ms",
          "p90_ms");

  /** The exit status, what was printed, and the usage message (Main prints it to stderr). */
  private record Run(int status, String out, String err) {}

  /** As {@code q4spark bench ARGS}, without the leading {@code bench}. */
  private static Run run(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    PrintStream print = new PrintStream(out, true, StandardCharsets.UTF_8);
    try {
      int status = new BenchCommand().run(args, print);
      return new Run(status, out.toString(StandardCharsets.UTF_8), "");
    } catch (Main.UsageException e) {
      return new Run(Main.EXIT_USAGE, out.toString(StandardCharsets.UTF_8), e.getMessage());
    }
  }

  @Test
  void quickRunPrintsTheTableAndWritesEveryMeasurement(@TempDir Path dir) throws Exception {
    Path json = dir.resolve("bench.json");
    Run r = run("cpu", "--quick", "--shapes", "384x1536", "--m", "1", "--json", json.toString());
    assertEquals(0, r.status(), r.err() + r.out());
    assertTrue(r.out().contains("DRAM read bandwidth, 2 thread(s)"), r.out());
    assertTrue(r.out().contains("idle check: load average"), r.out());
    for (String label :
        List.of("ORT nbits acc4", "ORT nbits acc0", "ORT fp32 MatMul", "DRAM roof")) {
      assertTrue(r.out().contains("384x1536        1 hot  " + label), r.out());
    }
    // fp32 activations: the tiled kernel takes fp16/bf16 only and says so once.
    assertTrue(
        r.out()
            .contains(
                "skipped TiledW4A16Kernel (W4A16, act float32): Activation dtype float32 not"
                    + " supported"),
        r.out());

    JsonNode root = new ObjectMapper().readTree(json.toFile());
    assertEquals("bench cpu", root.get("command").asText());
    assertTrue(root.get("dram").get("best_gbps").asDouble() > 0);
    // Surefire runs with --add-modules jdk.incubator.vector, as bin/q4spark does.
    assertTrue(root.get("dram").get("loop").asText().startsWith("Vector API loop"), r.out());
    assertEquals(2, root.get("idle_check").get("calibration_ms").size());
    JsonNode ms = root.get("measurements");
    Set<String> backends = new HashSet<>();
    for (JsonNode m : ms) {
      for (String f : FIELDS) {
        assertTrue(m.has(f), "measurement lacks " + f + ": " + m);
      }
      backends.add(m.get("backend").asText());
      assertEquals("hot", m.get("mode").asText());
      assertEquals(1, m.get("m").asInt());
      assertEquals(384, m.get("k").asInt());
      assertEquals(1536, m.get("n").asInt());
      assertEquals(128, m.get("g").asInt());
      assertEquals(2, m.get("threads").asInt());
      double median = m.get("median_ms").asDouble();
      assertTrue(median > 0, m.toString());
      assertTrue(m.get("p10_ms").asDouble() <= median && median <= m.get("p90_ms").asDouble());
      if (m.get("backend").asText().equals(Backend.OURS)) {
        // Whatever fast kernels this build has run; the scalar references only when named.
        String kernel = m.get("kernel").asText();
        assertTrue(KernelCatalog.names().contains(kernel), kernel);
        assertFalse(ShapeBackends.REFERENCES.contains(kernel), kernel);
        assertEquals("float32", m.get("act").asText());
      } else if (m.get("backend").asText().equals(Backend.ORT_ACC4)) {
        assertEquals(1.0, m.get("ratio_to_acc4").asDouble(), 1e-12);
        assertTrue(m.get("max_rel_err_vs_fp32").asDouble() < CpuBench.MAX_RELATIVE_ERROR);
      }
    }
    assertTrue(
        backends.containsAll(
            Set.of(Backend.ORT_ACC4, Backend.ORT_ACC0, Backend.ORT_DENSE, Measurement.DRAM_ROOF)),
        backends.toString());
  }

  @Test
  void namedKernelsRunInEachActivationDtypeAndMatchThePeers(@TempDir Path dir) throws Exception {
    Path json = dir.resolve("kernels.json");
    Run r =
        run(
            "cpu",
            "--quick",
            "--shapes",
            "384x1536",
            "--m",
            "2",
            "--act",
            "f32,f16",
            "--kernels",
            "ScalarW4A16Kernel,ScalarW4A8Kernel,TiledW4A16Kernel",
            "--json",
            json.toString());
    assertEquals(0, r.status(), r.err() + r.out());
    assertFalse(r.out().contains("WARNING: ScalarW4A16"), r.out());
    JsonNode ms = new ObjectMapper().readTree(json.toFile()).get("measurements");
    Set<String> ours = new HashSet<>();
    for (JsonNode m : ms) {
      if (m.get("backend").asText().equals(Backend.OURS)) {
        ours.add(m.get("kernel").asText() + " " + m.get("act").asText());
        // Int8 activations (W4A8) stay within about 1% of the largest fp32 output, fp16 within
        // about 0.1%, fp32 within rounding.
        assertTrue(
            m.get("max_rel_err_vs_fp32").asDouble() < CpuBench.MAX_RELATIVE_ERROR, m.toString());
      }
    }
    assertEquals(
        Set.of(
            "ScalarW4A16Kernel float32",
            "ScalarW4A8Kernel float32",
            "ScalarW4A16Kernel float16",
            "ScalarW4A8Kernel float16",
            "TiledW4A16Kernel float16"),
        ours);
  }

  @Test
  void badArgumentsAreOneLineAndStatusTwo() {
    Run r = run();
    assertEquals(Main.EXIT_USAGE, r.status());
    assertTrue(r.err().startsWith("missing target; usage: bench cpu"), r.err());
    r = run("tpu");
    assertEquals(Main.EXIT_USAGE, r.status());
    assertTrue(r.err().startsWith("unknown target 'tpu'"), r.err());
    r = run("gpu", "--m", "0");
    assertEquals(Main.EXIT_USAGE, r.status());
    assertEquals("The value of --m should be a positive integer, but was 0", r.err());
    r = run("gpu", "--backends", "triton");
    assertEquals(Main.EXIT_USAGE, r.status());
    assertEquals(
        "The value of --backends should be among [w4a16, w4a8, cublas], but was triton", r.err());
    r = run("cpu", "--threads", "0");
    assertEquals("The value of --threads should be a positive integer, but was 0", r.err());
    r = run("cpu", "--kernels", "FastKernel");
    assertEquals(
        "The value of --kernels should name kernels among "
            + KernelCatalog.names()
            + ", but was FastKernel",
        r.err());
    r = run("cpu", "--shapes", "4096y4096");
    assertTrue(r.err().startsWith("unknown shape '4096y4096': expected"), r.err());
    r = run("cpu", "--act", "fp8");
    assertTrue(r.err().startsWith("unknown floating-point type 'fp8'"), r.err());
  }

  @Test
  void shapesSelectPresetsGroupsAndCustomSizes() {
    assertEquals(
        List.of("4096x14336", "14336x4096"),
        BenchShape.select("llama").stream().map(BenchShape::name).toList());
    assertEquals(
        List.of("384x1536", "1536x384", "4096x4096"),
        BenchShape.select("minilm, 4096x4096,384x1536").stream().map(BenchShape::name).toList());
    BenchShape custom = BenchShape.select("512x256").get(0);
    assertEquals(512, custom.k());
    assertEquals(256, custom.n());
    assertEquals(5, BenchShape.select("all").size());
    assertThrows(IllegalArgumentException.class, () -> BenchShape.select(" , "));
  }

  @Test
  void coldModeRotatesOverMoreThan96MiB() {
    long bytes = BenchWeights.random(4096, 4096, 128, 1).packedBytes();
    int copies = ShapeBackends.coldCopies(bytes);
    assertTrue((copies - 1) * bytes <= ShapeBackends.COLD_BYTES);
    assertTrue(copies * bytes > ShapeBackends.COLD_BYTES);
    assertEquals(12, copies); // 8.9 MB a copy
    assertEquals(4, ShapeBackends.coldCopies(4096L * 14336 / 2 + 32L * 14336 * 4));
  }
}
