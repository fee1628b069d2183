package io.q4spark.kernels;

import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * Plain options for kernel selection. {@code kernels} never reads Spark configuration: the plugin
 * maps its keys onto this record.
 *
 * @param disabled kernels that must not be chosen, each with where the deny came from (the
 *     environment variable or an option), for the rejection reason
 * @param forced the one kernel to use, or null to choose automatically
 * @param threads how many threads a multithreaded kernel may use for one call (at least 1)
 * @param cudaDevice the CUDA device ordinal the GPU kernels prepare layers on
 */
public record KernelOptions(
    Map<String, String> disabled, String forced, int threads, int cudaDevice) {
  /** Environment variable holding a comma-separated deny-list of kernel names. */
  public static final String DISABLED_KERNELS_ENV = "Q4SPARK_DISABLED_KERNELS";

  public KernelOptions {
    disabled = Collections.unmodifiableMap(new LinkedHashMap<>(disabled));
    if (threads < 1) {
      throw new IllegalArgumentException("threads must be at least 1, but was " + threads);
    }
    if (cudaDevice < 0) {
      throw new IllegalArgumentException("cudaDevice must be at least 0, but was " + cudaDevice);
    }
  }

  /** Options on CUDA device 0. */
  public KernelOptions(Map<String, String> disabled, String forced, int threads) {
    this(disabled, forced, threads, 0);
  }

  /** No deny-list, no forced kernel, one thread per available processor. */
  public static KernelOptions defaults() {
    return new KernelOptions(Map.of(), null, Runtime.getRuntime().availableProcessors());
  }

  /** The deny-list from {@value #DISABLED_KERNELS_ENV}, nothing forced. */
  public static KernelOptions fromEnvironment() {
    return defaults().withDisabled(System.getenv(DISABLED_KERNELS_ENV), DISABLED_KERNELS_ENV);
  }

  /**
   * Adds the comma-separated kernel names in {@code list} (null or blank adds nothing) to the
   * deny-list, remembering {@code source} for the rejection reason.
   */
  public KernelOptions withDisabled(String list, String source) {
    if (list == null || list.isBlank()) {
      return this;
    }
    Map<String, String> d = new LinkedHashMap<>(disabled);
    Arrays.stream(list.split(","))
        .map(String::trim)
        .filter(s -> !s.isEmpty())
        .forEach(name -> d.putIfAbsent(name, source));
    return new KernelOptions(d, forced, threads, cudaDevice);
  }

  /** Forces {@code kernel} (null or blank clears it). */
  public KernelOptions withForced(String kernel) {
    return new KernelOptions(
        disabled,
        kernel == null || kernel.isBlank() ? null : Objects.requireNonNull(kernel).trim(),
        threads,
        cudaDevice);
  }

  /** Sets the number of threads per call. */
  public KernelOptions withThreads(int n) {
    return new KernelOptions(disabled, forced, n, cudaDevice);
  }

  /** Sets the CUDA device ordinal. */
  public KernelOptions withCudaDevice(int ordinal) {
    return new KernelOptions(disabled, forced, threads, ordinal);
  }
}
