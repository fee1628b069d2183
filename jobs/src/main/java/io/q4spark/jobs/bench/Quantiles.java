package io.q4spark.jobs.bench;

import java.util.Arrays;

/**
 * Sample quantiles by linear interpolation between order statistics (Hyndman and Fan's type 7, the
 * default of NumPy and R): for sorted values {@code x[0..n-1]} and {@code p} in [0, 1],
 *
 * <pre>
 *   h = (n - 1) * p,   q(p) = x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)])
 * </pre>
 *
 * so q(0) is the minimum, q(1) the maximum and q(0.5) the usual median.
 */
final class Quantiles {
  private final double[] sorted;

  /** Copies and sorts {@code values}; there must be at least one and none may be NaN. */
  Quantiles(double[] values) {
    if (values.length == 0) {
      throw new IllegalArgumentException("quantiles of an empty sample");
    }
    this.sorted = values.clone();
    Arrays.sort(sorted);
    if (Double.isNaN(sorted[sorted.length - 1])) {
      throw new IllegalArgumentException("quantiles of a sample holding NaN");
    }
  }

  /** The {@code p}-quantile, p in [0, 1]. */
  double at(double p) {
    if (!(p >= 0 && p <= 1)) {
      throw new IllegalArgumentException("quantile level must be in [0, 1], but was " + p);
    }
    double h = (sorted.length - 1) * p;
    int lo = (int) Math.floor(h);
    if (lo >= sorted.length - 1) {
      return sorted[sorted.length - 1];
    }
    return sorted[lo] + (h - lo) * (sorted[lo + 1] - sorted[lo]);
  }

  double median() {
    return at(0.5);
  }

  double min() {
    return sorted[0];
  }

  double max() {
    return sorted[sorted.length - 1];
  }

  int count() {
    return sorted.length;
  }
}
