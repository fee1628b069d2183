package io.q4spark.spark.conf;

import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/** What a row whose activations have the wrong length does: {@code spark.q4.onBadRow}. */
public enum BadRowPolicy {
  /** Fail the task with the row's position, the length found and the expected K. */
  FAIL,
  /** Give a null output for that row; the rest of the batch is kept. */
  NULL;

  public String configName() {
    return name().toLowerCase(Locale.ROOT);
  }

  public static List<String> configNames() {
    return Arrays.stream(values()).map(BadRowPolicy::configName).toList();
  }

  public static BadRowPolicy parse(String text) {
    return valueOf(text.trim().toUpperCase(Locale.ROOT));
  }
}
