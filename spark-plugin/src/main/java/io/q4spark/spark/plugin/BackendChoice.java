package io.q4spark.spark.plugin;

import io.q4spark.kernels.cuda.CudaDevice;
import io.q4spark.kernels.cuda.CudaOptions;
import io.q4spark.kernels.cuda.CudaProbe;
import io.q4spark.spark.conf.Backend;
import io.q4spark.spark.conf.Q4Conf;
import java.util.function.Supplier;

/**
 * The backend an executor runs, chosen once at plugin init, with why: {@code spark-rapids}' {@code
 * willNotWorkOnGpu(because)} for a whole executor.
 *
 * @param requested {@code spark.q4.backend} as configured
 * @param chosen {@link Backend#CPU} or {@link Backend#CUDA}
 * @param reason why the chosen backend runs (for {@code auto}, why CUDA did not), for the log
 */
public record BackendChoice(Backend requested, Backend chosen, String reason) {
  /**
   * The CUDA backend's probe on device {@code ordinal}: why it cannot start on this executor (no
   * driver, no NVRTC, no device, a device older than sm_80), or null when it can.
   */
  static String cudaRejection(int ordinal) {
    CudaProbe probe = CudaDevice.probe(CudaOptions.defaults().withDeviceOrdinal(ordinal));
    if (!probe.available()) {
      return probe.reason();
    }
    if (probe.computeCapability() < MIN_COMPUTE_CAPABILITY) {
      return probe.reason() + ": the CUDA kernels need compute capability 8.0 or newer";
    }
    return null;
  }

  /** bf16 mma and cp.async, which the CUDA kernels use, need Ampere (sm_80) or newer. */
  static final int MIN_COMPUTE_CAPABILITY = 80;

  /**
   * Chooses for {@code requested} on executor {@code executorId}, probing CUDA device {@code
   * ordinal}.
   *
   * @throws BackendUnavailableException when {@code cuda} was forced and cannot start
   */
  public static BackendChoice choose(Backend requested, String executorId, int ordinal) {
    return choose(requested, executorId, () -> cudaRejection(ordinal));
  }

  /** As {@link #choose(Backend, String, int)} with the probe given (for tests). */
  static BackendChoice choose(Backend requested, String executorId, Supplier<String> cudaProbe) {
    if (requested == Backend.CPU) {
      return new BackendChoice(
          requested, Backend.CPU, Q4Conf.BACKEND.key() + "=cpu: the CPU kernels, as configured");
    }
    String cudaRejection = cudaProbe.get();
    if (cudaRejection == null) {
      return new BackendChoice(
          requested,
          Backend.CUDA,
          Q4Conf.BACKEND.key() + "=" + requested.configName() + ": the CUDA backend started");
    }
    return switch (requested) {
      case CPU, AUTO ->
          new BackendChoice(
              requested,
              Backend.CPU,
              Q4Conf.BACKEND.key() + "=auto: CUDA rejected (" + cudaRejection + "), using the CPU");
      case CUDA ->
          throw new BackendUnavailableException(
              "executor "
                  + executorId
                  + ": "
                  + Q4Conf.BACKEND.key()
                  + "=cuda, but the CUDA backend cannot start: "
                  + cudaRejection
                  + "; set "
                  + Q4Conf.BACKEND.key()
                  + "=auto or cpu to run on the CPU");
    };
  }

  /** A backend forced by configuration cannot start: the executor must not run. */
  public static final class BackendUnavailableException extends IllegalStateException {
    public BackendUnavailableException(String message) {
      super(message);
    }
  }
}
