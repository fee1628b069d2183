package io.q4spark.spark.model;

import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/** The activation after a layer of a model, applied in place to the layer's fp32 outputs. */
public enum Activation {
  NONE,
  /** {@code max(0, x)}. */
  RELU,
  /**
   * {@code x * Phi(x)} with the exact normal CDF, as PyTorch's {@code nn.GELU()} default; erf is
   * Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7, under fp32's resolution at 1).
   */
  GELU,
  /** {@code x * sigmoid(x)} (SiLU, swish). */
  SILU;

  /** The spelling in model options: {@code none}, {@code relu}, {@code gelu}, {@code silu}. */
  public String configName() {
    return name().toLowerCase(Locale.ROOT);
  }

  public static List<String> configNames() {
    return Arrays.stream(values()).map(Activation::configName).toList();
  }

  /**
   * Parses a spelling (case-insensitive).
   *
   * @throws IllegalArgumentException naming the valid spellings
   */
  public static Activation parse(String text) {
    for (Activation a : values()) {
      if (a.configName().equalsIgnoreCase(text.trim())) {
        return a;
      }
    }
    throw new IllegalArgumentException(
        "unknown activation '" + text + "', expected one of " + configNames());
  }

  /** Applies the activation to {@code values[0, count)} in place. */
  public void apply(float[] values, int count) {
    switch (this) {
      case NONE -> {}
      case RELU -> {
        for (int i = 0; i < count; i++) {
          values[i] = Math.max(0f, values[i]);
        }
      }
      case GELU -> {
        for (int i = 0; i < count; i++) {
          double x = values[i];
          values[i] = (float) (0.5 * x * (1 + erf(x / Math.sqrt(2))));
        }
      }
      case SILU -> {
        for (int i = 0; i < count; i++) {
          double x = values[i];
          values[i] = (float) (x / (1 + Math.exp(-x)));
        }
      }
    }
  }

  /** Abramowitz and Stegun 7.1.26. */
  private static double erf(double x) {
    double t = 1 / (1 + 0.3275911 * Math.abs(x));
    double poly =
        t
            * (0.254829592
                + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    double y = 1 - poly * Math.exp(-x * x);
    return x >= 0 ? y : -y;
  }
}
