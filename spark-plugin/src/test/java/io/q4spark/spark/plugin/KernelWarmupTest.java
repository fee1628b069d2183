package io.q4spark.spark.plugin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.q4spark.kernels.KernelOptions;
import io.q4spark.spark.conf.Backend;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.Test;

class KernelWarmupTest {
  private static final KernelOptions CUDA = KernelOptions.defaults().withCudaDevice(3);
  private static final KernelOptions CPU =
      KernelOptions.defaults().withDisabled("CudaW4A16Kernel", "the CPU backend");

  @Test
  void initDoesNotWaitAndTheFirstUserDoes() throws Exception {
    CountDownLatch release = new CountDownLatch(1);
    KernelWarmup w =
        KernelWarmup.start(
            Backend.CUDA,
            "7",
            CUDA,
            CPU,
            () -> {
              release.await();
              return 42L;
            });
    assertFalse(w.isDone(), "start returned while compiling");
    release.countDown();
    assertSame(CUDA, w.options());
    assertTrue(w.isDone());
  }

  @Test
  void aFailedCompileUnderAutoFallsBackToTheCpuKernels() {
    KernelWarmup w =
        KernelWarmup.start(
            Backend.AUTO,
            "7",
            CUDA,
            CPU,
            () -> {
              throw new IllegalStateException("NVRTC_ERROR_COMPILATION: log ...");
            });
    assertSame(CPU, w.options());
  }

  @Test
  void aFailedCompileUnderForcedCudaFailsEachUserWithTheReason() {
    KernelWarmup w =
        KernelWarmup.start(
            Backend.CUDA,
            "7",
            CUDA,
            CPU,
            () -> {
              throw new IllegalStateException("NVRTC_ERROR_COMPILATION: log ...");
            });
    IllegalStateException e = assertThrows(IllegalStateException.class, w::options);
    assertEquals(
        "executor 7: the CUDA kernels could not be compiled: java.lang.IllegalStateException:"
            + " NVRTC_ERROR_COMPILATION: log ...",
        e.getMessage());
    assertThrows(IllegalStateException.class, w::options);
  }

  @Test
  void theCpuBackendIsReadyAtOnce() {
    KernelWarmup w = KernelWarmup.ready(CPU);
    assertTrue(w.isDone());
    assertSame(CPU, w.options());
  }
}
