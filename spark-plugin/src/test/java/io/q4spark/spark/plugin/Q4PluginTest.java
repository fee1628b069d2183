package io.q4spark.spark.plugin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.q4spark.spark.Q4SparkPlugin;
import io.q4spark.spark.TestSessions;
import io.q4spark.spark.conf.Backend;
import io.q4spark.spark.conf.Q4Conf;
import java.util.Map;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The plugin on local[2]: initialised once per side, CPU under {@code auto}, metrics registered.
 */
class Q4PluginTest {
  private static SparkSession spark;
  private static int driverInitsBefore;
  private static int executorInitsBefore;

  @BeforeAll
  static void start() {
    driverInitsBefore = Q4DriverPlugin.initCount();
    executorInitsBefore = Q4ExecutorPlugin.initCount();
    spark = TestSessions.local("Q4PluginTest", Map.of("spark.q4.batch.rows", "128"));
  }

  @AfterAll
  static void stop() {
    spark.stop();
  }

  @Test
  void initialisesOnceEvenAfterSeveralJobs() {
    for (int i = 0; i < 3; i++) {
      assertEquals(1000, spark.range(1000).repartition(4).count());
    }
    assertEquals(1, Q4DriverPlugin.initCount() - driverInitsBefore);
    assertEquals(1, Q4ExecutorPlugin.initCount() - executorInitsBefore);
  }

  @Test
  void autoFallsBackToTheCpuWithTheReason() {
    Q4Executor e = Q4Executor.current();
    assertEquals("driver", e.executorId());
    assertEquals(Backend.AUTO, e.backend().requested());
    assertEquals(Backend.CPU, e.backend().chosen());
    String why = BackendChoice.cudaRejection(0);
    org.junit.jupiter.api.Assumptions.assumeTrue(why != null, "a usable GPU is present here");
    assertEquals(
        "spark.q4.backend=auto: CUDA rejected (" + why + "), using the CPU", e.backend().reason());
    assertEquals("the CPU backend", e.kernelOptions().disabled().get("CudaW4A16Kernel"));
  }

  @Test
  void theConfigurationNamesThisPluginClass() {
    assertEquals(Q4SparkPlugin.class.getName(), Q4Conf.PLUGIN_CLASS);
  }

  @Test
  void executorsGetTheDriversConfiguration() {
    assertEquals(128, Q4Executor.current().settings().batchRows());
  }

  @Test
  void metricsAreRegisteredInThePluginRegistry() {
    assertTrue(
        spark
            .sparkContext()
            .env()
            .metricsSystem()
            .getSourcesByName("plugin.io.q4spark.spark.Q4SparkPlugin")
            .nonEmpty(),
        "the plugin's metric source is registered");
  }
}
