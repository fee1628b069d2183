package io.q4spark.kernels.quantize;

import io.q4spark.kernels.DType;

/**
 * Dynamic per-token symmetric int8 quantization of activations, exactly as vLLM's {@code
 * dynamic_per_token_int8_quant_ref(x, sym=True, bits=8)}, the first step of W4A8. For each row:
 *
 * <pre>
 *   absmax = max(|min(x)|, |max(x)|)                      (x values of the activation dtype, in fp32)
 *   scale  = round_act(max(absmax / 127, 1e-5))            (fp32 division, then one rounding to the
 *                                                           activation dtype)
 *   q[k]   = clamp(roundHalfEven(x[k] / scale), -128, 127) (fp32 division by the rounded scale)
 * </pre>
 *
 * Because the scale is rounded, |x| / scale can exceed 127 slightly: the clamp matters and -128 is
 * reachable. An all-zero row gets scale 1e-5 (rounded) and codes 0.
 */
public final class PerTokenInt8Quantizer {
  private PerTokenInt8Quantizer() {}

  /** Lower bound of a row's scale, so an all-zero row does not divide by zero. */
  public static final float MIN_SCALE = 1e-5f;

  /** int8 range used symmetrically: absmax maps to 127. */
  private static final float QMAX = 127f;

  /**
   * Codes and scales of {@code rows} rows of {@code k} values.
   *
   * @param codes receives {@code rows * k} codes
   * @param scales receives {@code rows} scales (values of {@code act})
   */
  public static void quantize(float[] x, int rows, int k, DType act, byte[] codes, float[] scales) {
    quantize(x, 0, rows, k, act, codes, scales);
  }

  /**
   * As {@link #quantize(float[], int, int, DType, byte[], float[])}, reading the rows from {@code
   * x[offset]} on; codes and scales are written from index 0.
   */
  public static void quantize(
      float[] x, int offset, int rows, int k, DType act, byte[] codes, float[] scales) {
    for (int m = 0; m < rows; m++) {
      int base = m * k;
      float absmax = 0f;
      for (int i = 0; i < k; i++) {
        absmax = Math.max(absmax, Math.abs(x[offset + base + i]));
      }
      float scale = act.round(Math.max(absmax / QMAX, MIN_SCALE));
      scales[m] = scale;
      for (int i = 0; i < k; i++) {
        float q = (float) Math.rint(x[offset + base + i] / scale);
        codes[base + i] = (byte) Math.max(-128f, Math.min(127f, q));
      }
    }
  }
}
