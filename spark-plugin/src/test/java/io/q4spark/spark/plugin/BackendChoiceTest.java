package io.q4spark.spark.plugin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.q4spark.spark.conf.Backend;
import org.junit.jupiter.api.Test;

class BackendChoiceTest {
  @Test
  void cpuIsTakenAsConfigured() {
    BackendChoice c = BackendChoice.choose(Backend.CPU, "7", () -> "no GPU in this test");
    assertEquals(Backend.CPU, c.chosen());
    assertEquals("spark.q4.backend=cpu: the CPU kernels, as configured", c.reason());
  }

  @Test
  void autoFallsBackWithTheProbesReason() {
    BackendChoice c = BackendChoice.choose(Backend.AUTO, "7", () -> "no GPU in this test");
    assertEquals(Backend.CPU, c.chosen());
    assertEquals(
        "spark.q4.backend=auto: CUDA rejected (no GPU in this test), using the CPU", c.reason());
  }

  @Test
  void cudaIsChosenWhenTheProbeAccepts() {
    BackendChoice c = BackendChoice.choose(Backend.AUTO, "7", () -> null);
    assertEquals(Backend.CUDA, c.chosen());
    assertEquals("spark.q4.backend=auto: the CUDA backend started", c.reason());
  }

  @Test
  void theRealProbeNamesWhatIsMissing() {
    String why = BackendChoice.cudaRejection(0);
    org.junit.jupiter.api.Assumptions.assumeTrue(why != null, "a usable GPU is present here");
    org.junit.jupiter.api.Assertions.assertTrue(
        why.contains("libcuda") || why.contains("cuInit") || why.contains("NVRTC"), why);
  }

  @Test
  void forcedCudaThatCannotStartNamesTheExecutorTheReasonAndTheFix() {
    BackendChoice.BackendUnavailableException e =
        assertThrows(
            BackendChoice.BackendUnavailableException.class,
            () -> BackendChoice.choose(Backend.CUDA, "7", () -> "no GPU in this test"));
    assertEquals(
        "executor 7: spark.q4.backend=cuda, but the CUDA backend cannot start: no GPU in this"
            + " test; set spark.q4.backend=auto or cpu to run on the CPU",
        e.getMessage());
  }
}
