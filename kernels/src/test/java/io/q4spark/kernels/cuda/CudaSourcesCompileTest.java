package io.q4spark.kernels.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Every CUDA source compiles for the oldest and the newest architecture q4spark targets, checked
 * with nvcc on machines without a GPU (NVRTC, which compiles them on the nodes, is absent here).
 * The program NVRTC receives (includes inlined by {@link CudaSources#program}) is compiled too, so
 * the inlining cannot break it. Skipped, with the reason, where nvcc is not installed.
 */
class CudaSourcesCompileTest {
  /** sm_80 is the oldest GPU with bf16 mma and cp.async; sm_90a is the H100's full ISA. */
  private static final List<String> ARCHS = List.of("sm_80", "sm_90a");

  /** A generous bound: one source takes about 10 s to compile on a 2-core machine. */
  private static final long COMPILE_TIMEOUT_S = 300;

  @TempDir Path dir;

  @ParameterizedTest
  @CsvSource({
    "w4a16_gemm.cu, sm_80",
    "w4a16_gemm.cu, sm_90a",
    "w4a16_wgmma.cu, sm_80",
    "w4a16_wgmma.cu, sm_90a",
    "w4a8_gemm.cu, sm_80",
    "w4a8_gemm.cu, sm_90a"
  })
  void nvrtcProgramCompilesWithNvcc(String source, String arch) throws Exception {
    Path nvcc = findNvcc();
    Assumptions.assumeTrue(
        nvcc != null,
        "nvcc not found on PATH or in /usr/local/cuda/bin: CUDA compile check skipped");
    assertTrue(ARCHS.contains(arch));
    Path file = dir.resolve(source);
    Files.writeString(file, CudaSources.program(source), StandardCharsets.UTF_8);
    Path cubin = dir.resolve(source + "." + arch + ".cubin");
    List<String> cmd =
        new ArrayList<>(
            List.of(
                nvcc.toString(),
                "-arch=" + arch,
                "-std=c++17",
                "-cubin",
                "-Werror",
                "all-warnings",
                "-o",
                cubin.toString(),
                file.toString()));
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    boolean done = p.waitFor(COMPILE_TIMEOUT_S, TimeUnit.SECONDS);
    String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!done) {
      p.destroyForcibly();
    }
    assertTrue(done, "nvcc did not finish within " + COMPILE_TIMEOUT_S + " s");
    assertEquals(0, p.exitValue(), "nvcc " + String.join(" ", cmd) + " failed:\n" + log);
    assertTrue(Files.size(cubin) > 0);
  }

  @Test
  void programsInlineTheirHeadersOnce() {
    for (String name : CudaSources.PROGRAMS) {
      String program = CudaSources.program(name);
      assertFalse(program.contains("#include"), name + " still has an #include");
      assertEquals(
          program.indexOf("__device__ __forceinline__ float f16_to_f32"),
          program.lastIndexOf("__device__ __forceinline__ float f16_to_f32"),
          name + " carries q4_device.cuh twice");
      assertTrue(program.contains("extern \"C\" __global__ void q4_f32_to_half"), name);
    }
  }

  static Path findNvcc() throws IOException {
    List<Path> candidates = new ArrayList<>();
    String path = System.getenv("PATH");
    if (path != null) {
      for (String d : path.split(java.io.File.pathSeparator)) {
        candidates.add(Path.of(d, "nvcc"));
      }
    }
    candidates.add(Path.of("/usr/local/cuda/bin/nvcc"));
    for (Path c : candidates) {
      if (Files.isExecutable(c)) {
        return c;
      }
    }
    return null;
  }
}
