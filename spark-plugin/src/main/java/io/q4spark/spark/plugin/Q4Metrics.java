package io.q4spark.spark.plugin;

import com.codahale.metrics.Counter;
import com.codahale.metrics.Gauge;
import com.codahale.metrics.MetricRegistry;
import com.codahale.metrics.Timer;
import io.q4spark.spark.model.LoadedModel;
import java.util.concurrent.TimeUnit;

/**
 * The executor's q4spark metrics, registered once in the plugin's registry (Spark publishes them
 * under {@code plugin.io.q4spark.spark.Q4SparkPlugin.*}).
 *
 * <pre>
 *   rows             rows given to the kernels (null and bad rows excluded)
 *   batches          batches run
 *   kernelTime       time in the layer stack per batch
 *   bytesToDevice    bytes copied to the GPU (0 on the CPU backend)
 *   bytesFromDevice  bytes copied back from the GPU (0 on the CPU backend)
 *   backend          the backend in use: cpu or cuda
 * </pre>
 */
public final class Q4Metrics {
  private final Counter rows;
  private final Counter batches;
  private final Timer kernelTime;
  private final Counter bytesToDevice;
  private final Counter bytesFromDevice;

  Q4Metrics(MetricRegistry registry, String backend) {
    rows = registry.counter("rows");
    batches = registry.counter("batches");
    kernelTime = registry.timer("kernelTime");
    bytesToDevice = registry.counter("bytesToDevice");
    bytesFromDevice = registry.counter("bytesFromDevice");
    registry.register("backend", (Gauge<String>) () -> backend);
  }

  private void batch(int batchRows, long nanos) {
    rows.inc(batchRows);
    batches.inc();
    kernelTime.update(nanos, TimeUnit.NANOSECONDS);
  }

  /**
   * Records one batch of {@code batchRows} rows of {@code model} that took {@code nanos} in the
   * kernels, with the bytes its GPU layers copied to and from the device.
   */
  public void batch(LoadedModel model, int batchRows, long nanos) {
    batch(batchRows, nanos);
    long[] traffic = model.deviceTraffic(batchRows);
    bytesToDevice.inc(traffic[0]);
    bytesFromDevice.inc(traffic[1]);
  }

  public long bytesToDevice() {
    return bytesToDevice.getCount();
  }

  public long bytesFromDevice() {
    return bytesFromDevice.getCount();
  }

  public long rows() {
    return rows.getCount();
  }

  public long batches() {
    return batches.getCount();
  }
}
