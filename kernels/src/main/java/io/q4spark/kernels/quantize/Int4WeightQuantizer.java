package io.q4spark.kernels.quantize;

import io.q4spark.kernels.DType;

/**
 * Quantizes float weights to 4-bit codes per group and output column, as vLLM's test helper {@code
 * quantize_weights} does; used to make checkpoints (tests, the demo) from float weights.
 *
 * <pre>
 *   symmetric (uint4b8):   s = max(|max / 7|, |min / -8|)      q = clamp(rint(w / s), -8, 7) + 8
 *   asymmetric (uint4):    s = max(max - min, 1e-5) / 15       z = clamp(rint(|min / s|), 0, 15)
 *                                                              q = clamp(rint(w / s) + z, 0, 15)
 * </pre>
 *
 * Scales are rounded to {@code scaleType} before the codes are computed, so the codes are the best
 * for the scale actually stored. Groups run along K; the weight is given as [K, N] row-major.
 */
public final class Int4WeightQuantizer {
  private Int4WeightQuantizer() {}

  /** Smallest asymmetric range, so a constant group does not divide by zero. */
  private static final float MIN_RANGE = 1e-5f;

  /** The smallest scale written for a symmetric group that is all zeros. */
  private static final float MIN_SYMMETRIC_SCALE = 1e-8f;

  /**
   * Quantized weights: codes [K, N], scales [K/G, N], zero codes [K/G, N] (null when symmetric).
   */
  public record Result(byte[] codes, float[] scales, byte[] zeros) {}

  /**
   * @param w [K, N] row-major weights
   * @param groupSize G, or -1 for one group over K
   */
  public static Result quantize(
      float[] w, int k, int n, int groupSize, boolean symmetric, DType scaleType) {
    int g = groupSize == -1 ? k : groupSize;
    if (k % g != 0) {
      throw new IllegalArgumentException("K=" + k + " is not divisible by the group size " + g);
    }
    int groups = k / g;
    byte[] codes = new byte[k * n];
    float[] scales = new float[groups * n];
    byte[] zeros = symmetric ? null : new byte[groups * n];
    for (int grp = 0; grp < groups; grp++) {
      for (int col = 0; col < n; col++) {
        float min = Float.POSITIVE_INFINITY;
        float max = Float.NEGATIVE_INFINITY;
        for (int row = grp * g; row < (grp + 1) * g; row++) {
          float v = w[row * n + col];
          min = Math.min(min, v);
          max = Math.max(max, v);
        }
        float s;
        int z;
        if (symmetric) {
          s =
              scaleType.round(
                  Math.max(Math.max(Math.abs(max / 7f), Math.abs(min / -8f)), MIN_SYMMETRIC_SCALE));
          z = 8;
        } else {
          s = scaleType.round(Math.max(max - min, MIN_RANGE) / 15f);
          z = (int) Math.max(0, Math.min(15, Math.rint(Math.abs(min / s))));
          zeros[grp * n + col] = (byte) z;
        }
        scales[grp * n + col] = s;
        for (int row = grp * g; row < (grp + 1) * g; row++) {
          float q = (float) Math.rint(w[row * n + col] / s);
          int code =
              symmetric
                  ? (int) Math.max(-8, Math.min(7, q)) + 8
                  : (int) Math.max(0, Math.min(15, q + z));
          codes[row * n + col] = (byte) code;
        }
      }
    }
    return new Result(codes, scales, zeros);
  }
}
