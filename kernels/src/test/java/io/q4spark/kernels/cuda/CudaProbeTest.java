package io.q4spark.kernels.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** The probe and open on machines without a usable CUDA stack; never needs a GPU. */
class CudaProbeTest {
  @Test
  void explicitMissingDriverIsUnavailableWithReason() {
    CudaOptions options =
        CudaOptions.defaults().withLibraries(Path.of("/nowhere/libcuda.so.1"), null, null);
    CudaProbe probe = CudaDevice.probe(options);
    assertFalse(probe.available());
    assertTrue(
        probe.reason().startsWith("libcuda not found: tried CudaOptions.driverLibrary=/nowhere"),
        probe.reason());
    assertNull(probe.deviceName());
    assertEquals(0, probe.computeCapability());
  }

  @Test
  void probeNeverThrowsAndSaysWhatItTried() {
    CudaProbe probe = CudaDevice.probe(CudaOptions.defaults());
    if (!probe.available()) {
      // this machine (no libcuda, or no device): the reason names what was tried or what failed
      assertTrue(
          probe.reason().contains("libcuda.so.1") || probe.reason().startsWith("cuInit failed"),
          probe.reason());
    } else {
      assertTrue(probe.reason().startsWith("device 0: "), probe.reason());
      assertTrue(probe.computeCapability() > 0);
    }
  }

  @Test
  void openWithoutDriverThrowsCudaExceptionNamingTheFix() {
    CudaOptions options =
        CudaOptions.defaults().withLibraries(Path.of("/nowhere/libcuda.so.1"), null, null);
    CudaException e = assertThrows(CudaException.class, () -> CudaDevice.open(options));
    assertTrue(e.getMessage().contains("/nowhere/libcuda.so.1"), e.getMessage());
    assertTrue(e.getMessage().contains("Q4SPARK_CUDA_LIB"), e.getMessage());
    assertEquals(CudaException.NO_STATUS, e.status());
  }

  @Test
  void negativeOrdinalIsRejected() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class, () -> new CudaOptions(null, null, null, -1, null));
    assertEquals("deviceOrdinal should be at least 0, but was -1", e.getMessage());
  }

  @Test
  void defaultCacheDirIsUnderTmpdir() {
    assertEquals(
        Path.of(System.getProperty("java.io.tmpdir"), "q4spark-cubin-cache"),
        CudaOptions.defaults().effectiveCacheDir());
    assertEquals(
        Path.of("/x"), CudaOptions.defaults().withCacheDir(Path.of("/x")).effectiveCacheDir());
  }

  @Test
  void compileOptionsAddArchAndStandardButNoFastMath() {
    assertEquals(
        java.util.List.of("--gpu-architecture=sm_90", "-std=c++17", "-lineinfo"),
        CudaDevice.compileOptions("--gpu-architecture=sm_90", java.util.List.of("-lineinfo")));
    assertEquals(
        java.util.List.of("-std=c++17", "--gpu-architecture=sm_90a"),
        CudaDevice.compileOptions(
            "--gpu-architecture=sm_90", java.util.List.of("--gpu-architecture=sm_90a")));
    assertFalse(
        CudaDevice.compileOptions("--gpu-architecture=sm_80", java.util.List.of())
            .contains("--use_fast_math"));
  }
}
