package io.q4spark.spark.plugin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.q4spark.spark.Q4SparkPlugin;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;

/** Configurations the plugin refuses: the application does not start, and says why. */
class Q4PluginStartupTest {
  private static Throwable startFailure(String key, String value) {
    Throwable t =
        assertThrows(
            Throwable.class,
            () ->
                SparkSession.builder()
                    .master("local[1]")
                    .appName("Q4PluginStartupTest")
                    .config("spark.ui.enabled", "false")
                    .config("spark.plugins", Q4SparkPlugin.class.getName())
                    .config(key, value)
                    .getOrCreate()
                    .stop());
    while (t.getCause() != null && !(t instanceof IllegalArgumentException)) {
      t = t.getCause();
    }
    return t;
  }

  @Test
  void forcedCudaFailsTheExecutorWithTheReason() {
    String why = BackendChoice.cudaRejection(0);
    org.junit.jupiter.api.Assumptions.assumeTrue(why != null, "a usable GPU is present here");
    Throwable t = startFailure("spark.q4.backend", "cuda");
    assertTrue(t instanceof BackendChoice.BackendUnavailableException, t.toString());
    assertEquals(
        "executor driver: spark.q4.backend=cuda, but the CUDA backend cannot start: "
            + why
            + "; set spark.q4.backend=auto or cpu to run on the CPU",
        t.getMessage());
  }

  @Test
  void unknownKeyIsAnErrorNamingTheKnownKeys() {
    Throwable t = startFailure("spark.q4.batch.row", "8");
    assertTrue(t instanceof IllegalArgumentException, t.toString());
    assertEquals(
        "spark.q4.batch.row is not a q4spark configuration key; the known keys are"
            + " [spark.q4.backend, spark.q4.batch.rows, spark.q4.cpu.threads,"
            + " spark.q4.gpu.concurrentTasks, spark.q4.gpu.device, spark.q4.kernels.disabled,"
            + " spark.q4.kernels.force, spark.q4.onBadRow, spark.q4.output.format]",
        t.getMessage());
  }

  @Test
  void invalidValueUsesTheOneTemplate() {
    Throwable t = startFailure("spark.q4.batch.rows", "0");
    assertEquals(
        "The value of spark.q4.batch.rows should be an integer between 1 and 131072, but was 0",
        t.getMessage());
  }
}
