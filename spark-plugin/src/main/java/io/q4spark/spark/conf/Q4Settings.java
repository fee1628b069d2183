package io.q4spark.spark.conf;

import io.q4spark.kernels.KernelOptions;
import java.util.Map;

/**
 * The parsed {@code spark.q4.*} configuration, checked: what the plugin, the model cache and the
 * Dataset path read instead of raw keys.
 *
 * @param backend {@code spark.q4.backend}
 * @param batchRows {@code spark.q4.batch.rows}
 * @param onBadRow {@code spark.q4.onBadRow}
 * @param outputFormat {@code spark.q4.output.format}
 * @param gpuConcurrentTasks {@code spark.q4.gpu.concurrentTasks}
 * @param gpuDevice {@code spark.q4.gpu.device}, or null when unset
 * @param kernelOptions {@code spark.q4.kernels.*} and {@code spark.q4.cpu.threads} as the kernels'
 *     options record
 */
public record Q4Settings(
    Backend backend,
    int batchRows,
    BadRowPolicy onBadRow,
    OutputFormat outputFormat,
    int gpuConcurrentTasks,
    Integer gpuDevice,
    KernelOptions kernelOptions) {

  /**
   * Parses a configuration map (other keys than {@code spark.q4.*} are ignored).
   *
   * @throws IllegalArgumentException for an unknown {@code spark.q4.*} key or an invalid value
   */
  public static Q4Settings from(Map<String, String> conf) {
    Map<String, String> q4 = Q4Conf.validate(conf);
    return new Q4Settings(
        Q4Conf.BACKEND.get(q4),
        Q4Conf.BATCH_ROWS.get(q4),
        Q4Conf.ON_BAD_ROW.get(q4),
        Q4Conf.OUTPUT_FORMAT.get(q4),
        Q4Conf.GPU_CONCURRENT_TASKS.get(q4),
        Q4Conf.GPU_DEVICE.get(q4),
        Q4Conf.kernelOptions(q4));
  }
}
