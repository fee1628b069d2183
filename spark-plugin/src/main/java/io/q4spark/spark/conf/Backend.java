package io.q4spark.spark.conf;

import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/** Where an executor runs the layers: {@code spark.q4.backend}. */
public enum Backend {
  /** The CUDA backend when it can start, else the CPU (the reason is logged). */
  AUTO,
  /** The CPU kernels. */
  CPU,
  /** The CUDA backend; an executor that cannot start it fails with the reason. */
  CUDA;

  /** The spelling in configuration: {@code auto}, {@code cpu}, {@code cuda}. */
  public String configName() {
    return name().toLowerCase(Locale.ROOT);
  }

  /** The configuration spellings of all values. */
  public static List<String> configNames() {
    return Arrays.stream(values()).map(Backend::configName).toList();
  }

  /** Parses a configuration spelling (case-insensitive). */
  public static Backend parse(String text) {
    return valueOf(text.trim().toUpperCase(Locale.ROOT));
  }
}
