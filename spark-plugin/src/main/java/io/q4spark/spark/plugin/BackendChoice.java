package io.q4spark.spark.plugin;

import io.q4spark.spark.conf.Backend;
import io.q4spark.spark.conf.Q4Conf;

/**
 * The backend an executor runs, chosen once at plugin init, with why: {@code spark-rapids}' {@code
 * willNotWorkOnGpu(because)} for a whole executor.
 *
 * @param requested {@code spark.q4.backend} as configured
 * @param chosen {@link Backend#CPU} or {@link Backend#CUDA}
 * @param reason why the chosen backend runs (for {@code auto}, why CUDA did not), for the log
 */
public record BackendChoice(Backend requested, Backend chosen, String reason) {
  /** The reason every executor gets while this build has no CUDA backend. */
  static final String CUDA_UNAVAILABLE = "the CUDA backend is not available yet";

  /** The CUDA backend's probe: why it cannot start on this executor, or null when it can. */
  static String cudaRejection() {
    return CUDA_UNAVAILABLE;
  }

  /**
   * Chooses for {@code requested} on executor {@code executorId}.
   *
   * @throws BackendUnavailableException when {@code cuda} was forced and cannot start
   */
  public static BackendChoice choose(Backend requested, String executorId) {
    if (requested == Backend.CPU) {
      return new BackendChoice(
          requested, Backend.CPU, Q4Conf.BACKEND.key() + "=cpu: the CPU kernels, as configured");
    }
    String cudaRejection = cudaRejection();
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
