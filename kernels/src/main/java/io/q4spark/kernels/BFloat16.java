package io.q4spark.kernels;

/**
 * bfloat16 conversions. Java has {@link Float#floatToFloat16} for IEEE half precision but nothing
 * for bfloat16, so this class does it by hand: bfloat16 is the top 16 bits of an fp32 pattern, and
 * narrowing rounds to nearest with ties to even, as PyTorch and the CUDA intrinsics do.
 */
public final class BFloat16 {
  private BFloat16() {}

  /**
   * Narrows with round-to-nearest-even; NaN stays NaN (quiet), infinities and signed zeros are
   * kept.
   */
  public static short fromFloat(float value) {
    int bits = Float.floatToRawIntBits(value);
    if ((bits & 0x7FFF_FFFF) > 0x7F80_0000) {
      // NaN: keep sign and the top payload bits, and force the quiet bit so it cannot become
      // infinity.
      return (short) ((bits >>> 16) | 0x0040);
    }
    // Add 0x7FFF plus the lowest kept bit: below half rounds down, above half up, a tie to the even
    // one.
    int lsb = (bits >>> 16) & 1;
    return (short) ((bits + 0x7FFF + lsb) >>> 16);
  }

  /** Widens exactly. */
  public static float toFloat(short bits) {
    return Float.intBitsToFloat((bits & 0xFFFF) << 16);
  }

  /** The nearest bfloat16 value, as a float. */
  public static float round(float value) {
    return toFloat(fromFloat(value));
  }
}
