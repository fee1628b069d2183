package io.q4spark.spark;

import io.q4spark.spark.plugin.Q4DriverPlugin;
import io.q4spark.spark.plugin.Q4ExecutorPlugin;
import org.apache.spark.api.plugin.DriverPlugin;
import org.apache.spark.api.plugin.ExecutorPlugin;
import org.apache.spark.api.plugin.SparkPlugin;

/**
 * q4spark's entry in {@code spark.plugins}: {@code spark.plugins=io.q4spark.spark.Q4SparkPlugin}.
 * It only returns the two sides; {@link Q4DriverPlugin} validates the configuration, {@link
 * Q4ExecutorPlugin} sets up each executor.
 */
public final class Q4SparkPlugin implements SparkPlugin {
  @Override
  public DriverPlugin driverPlugin() {
    return new Q4DriverPlugin();
  }

  @Override
  public ExecutorPlugin executorPlugin() {
    return new Q4ExecutorPlugin();
  }
}
