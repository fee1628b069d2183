package io.q4spark.kernels;

/**
 * IEEE 754 half precision (fp16). Narrowing from float uses the JDK's {@link Float#floatToFloat16}
 * (round to nearest even); narrowing from double is done here in one rounding, because going
 * through float first would round twice.
 */
public final class Float16 {
  private Float16() {}

  /** Largest finite fp16 value. */
  public static final float MAX_VALUE = 65504f;

  /** Smallest positive subnormal fp16 value, 2^-24: the spacing of fp16 values below 2^-14. */
  private static final double MIN_SUBNORMAL = 0x1p-24;

  /** Smallest positive normal fp16 value, 2^-14. */
  private static final double MIN_NORMAL = 0x1p-14;

  /** Values from here up round to infinity: halfway between 65504 and the next step, 65536. */
  private static final double OVERFLOW_THRESHOLD = 65520.0;

  public static short fromFloat(float value) {
    return Float.floatToFloat16(value);
  }

  public static float toFloat(short bits) {
    return Float.float16ToFloat(bits);
  }

  /** The nearest fp16 value, as a float. */
  public static float round(float value) {
    return Float.float16ToFloat(Float.floatToFloat16(value));
  }

  /**
   * Rounds a double to the nearest fp16 value (ties to even) in a single rounding. The result is
   * exactly representable as a float.
   */
  public static float round(double value) {
    if (Double.isNaN(value) || Double.isInfinite(value) || value == 0.0) {
      return (float) value;
    }
    double magnitude = Math.abs(value);
    if (magnitude >= OVERFLOW_THRESHOLD) {
      return value > 0 ? Float.POSITIVE_INFINITY : Float.NEGATIVE_INFINITY;
    }
    // Spacing of fp16 values around |value|: 2^(exponent - 10) for normals, 2^-24 for subnormals.
    double spacing =
        magnitude < MIN_NORMAL ? MIN_SUBNORMAL : Math.scalb(1.0, Math.getExponent(magnitude) - 10);
    // Division and multiplication by a power of two are exact, so rint is the only rounding.
    return (float) (Math.rint(value / spacing) * spacing);
  }

  public static short fromDouble(double value) {
    return Float.floatToFloat16(round(value));
  }
}
