package io.q4spark.spark.plugin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.q4spark.spark.conf.Backend;
import org.junit.jupiter.api.Test;

class BackendChoiceTest {
  @Test
  void cpuIsTakenAsConfigured() {
    BackendChoice c = BackendChoice.choose(Backend.CPU, "7");
    assertEquals(Backend.CPU, c.chosen());
    assertEquals("spark.q4.backend=cpu: the CPU kernels, as configured", c.reason());
  }

  @Test
  void autoFallsBackWithTheProbesReason() {
    BackendChoice c = BackendChoice.choose(Backend.AUTO, "7");
    assertEquals(Backend.CPU, c.chosen());
    assertEquals(
        "spark.q4.backend=auto: CUDA rejected (the CUDA backend is not available yet), using the"
            + " CPU",
        c.reason());
  }

  @Test
  void forcedCudaThatCannotStartNamesTheExecutorTheReasonAndTheFix() {
    BackendChoice.BackendUnavailableException e =
        assertThrows(
            BackendChoice.BackendUnavailableException.class,
            () -> BackendChoice.choose(Backend.CUDA, "7"));
    assertEquals(
        "executor 7: spark.q4.backend=cuda, but the CUDA backend cannot start: the CUDA backend is"
            + " not available yet; set spark.q4.backend=auto or cpu to run on the CPU",
        e.getMessage());
  }
}
