package io.q4spark.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** fp16 and bf16 narrowing: exhaustive over bf16, boundaries and ties for both. */
class FloatFormatsTest {

  /** An independent bf16 rounding: pick the nearer of the two neighbours in double arithmetic. */
  private static short bf16Reference(float f) {
    int bits = Float.floatToRawIntBits(f);
    int down = bits >>> 16;
    int up = down + 1;
    double dDown = Math.abs((double) f - Float.intBitsToFloat(down << 16));
    // up may step into the next binade or to infinity; both are still the right neighbour.
    double dUp = Math.abs((double) Float.intBitsToFloat(up << 16) - (double) f);
    if ((up & 0x7F80) == 0x7F80 && (up & 0x7F) == 0 && (down & 0x7F80) != 0x7F80) {
      // Rounding past the largest finite value: IEEE overflows to infinity at or beyond the
      // midpoint.
      dUp = Math.abs(f) >= Float.intBitsToFloat(0x7F7F8000) ? 0 : Double.MAX_VALUE;
      if (Math.abs(f) == Float.intBitsToFloat(0x7F7F8000)) {
        return (short) ((down & 1) == 0 ? down : up);
      }
    }
    if (dDown < dUp) {
      return (short) down;
    } else if (dUp < dDown) {
      return (short) up;
    }
    return (short) ((down & 1) == 0 ? down : up);
  }

  @Test
  void bf16RoundTripsEveryValueExhaustively() {
    for (int b = 0; b < 0x10000; b++) {
      short bits = (short) b;
      float f = BFloat16.toFloat(bits);
      if (Float.isNaN(f)) {
        assertTrue(Float.isNaN(BFloat16.toFloat(BFloat16.fromFloat(f))), "NaN stays NaN: " + b);
        continue;
      }
      assertEquals(
          bits, BFloat16.fromFloat(f), "round trip of bf16 pattern " + Integer.toHexString(b));
    }
  }

  @Test
  void bf16TiesGoToEvenAndNeighboursOfEveryMidpointRoundTheRightWay() {
    for (int b = 0; b < 0x7F7F; b++) {
      int lowBits = b << 16;
      int midpoint = lowBits | 0x8000;
      // Exactly halfway: the even one of b and b + 1.
      int expectedTie = (b & 1) == 0 ? b : b + 1;
      assertEquals((short) expectedTie, BFloat16.fromFloat(Float.intBitsToFloat(midpoint)));
      assertEquals((short) b, BFloat16.fromFloat(Float.intBitsToFloat(midpoint - 1)));
      assertEquals((short) (b + 1), BFloat16.fromFloat(Float.intBitsToFloat(midpoint + 1)));
      // Negative values mirror.
      assertEquals(
          (short) (expectedTie | 0x8000),
          BFloat16.fromFloat(Float.intBitsToFloat(midpoint | 0x8000_0000)));
    }
  }

  @Test
  void bf16MatchesAnIndependentRoundingOnAStrideThroughAllFloats() {
    // 2^32 / 4099 ~ 1 million patterns, covering every exponent and many mantissas.
    for (long bits = 0; bits <= 0xFFFF_FFFFL; bits += 4099) {
      float f = Float.intBitsToFloat((int) bits);
      if (Float.isNaN(f) || Float.isInfinite(f)) {
        continue;
      }
      assertEquals(bf16Reference(f), BFloat16.fromFloat(f), "float bits " + Long.toHexString(bits));
    }
  }

  @Test
  void bf16SpecialValues() {
    assertEquals(Float.POSITIVE_INFINITY, BFloat16.round(Float.MAX_VALUE));
    assertEquals(Float.NEGATIVE_INFINITY, BFloat16.round(Float.NEGATIVE_INFINITY));
    assertEquals(0x8000, BFloat16.fromFloat(-0f) & 0xFFFF);
    assertTrue(Float.isNaN(BFloat16.round(Float.NaN)));
    // A NaN whose payload sits only in the low bits must not become infinity.
    assertTrue(Float.isNaN(BFloat16.round(Float.intBitsToFloat(0x7F80_0001))));
    assertEquals(
        1.0f, BFloat16.round(1.00390625f)); // 1 + 2^-8: tie between 1 and 1 + 2^-7, to even
    assertEquals(1.015625f, BFloat16.round(1.01171875f)); // 1 + 3*2^-8: tie, to even (1 + 2^-6)
  }

  @Test
  void fp16BoundariesAndTies() {
    assertEquals(65504f, Float16.round(65504f));
    assertEquals(65504f, Float16.round(65519.99f));
    assertEquals(Float.POSITIVE_INFINITY, Float16.round(65520f));
    assertEquals(0x1p-24f, Float16.round(0x1p-24f));
    assertEquals(0f, Float16.round(0x1p-25f)); // tie between 0 and 2^-24: to even, 0
    assertEquals(0x1p-23f, Float16.round(3 * 0x1p-25f)); // tie between 2^-24 and 2^-23: to 2^-23
    assertEquals(1f, Float16.round(1 + 0x1p-11f)); // tie: to even
    assertEquals(1 + 0x1p-9f, Float16.round(1 + 3 * 0x1p-11f)); // tie: to even
  }

  @Test
  void fp16FromDoubleRoundsOnce() {
    // Through float this would round twice: 1 + 2^-11 + 2^-40 becomes the tie 1 + 2^-11, then 1.
    assertEquals(1 + 0x1p-10f, Float16.round(1 + 0x1p-11 + 0x1p-40));
    assertEquals(1f, Float16.round(1 + 0x1p-11 - 0x1p-40));
    assertEquals(65504f, Float16.round(65519.999999));
    assertEquals(Float.POSITIVE_INFINITY, Float16.round(65520.0));
    assertEquals(Float.NEGATIVE_INFINITY, Float16.round(-1e300));
    assertEquals(0x1p-24f, Float16.round(0x1p-25 + 0x1p-60));
    assertTrue(Float.isNaN(Float16.round(Double.NaN)));
  }

  @Test
  void fp16FromDoubleAgreesWithTheJdkOnEveryHalfValueAndItsMidpoints() {
    // Up to the largest finite value, whose upper neighbour is infinity (tested above).
    for (int h = 0; h < 0x7BFF; h++) {
      float v = Float.float16ToFloat((short) h);
      assertEquals(v, Float16.round((double) v));
      float next = Float.float16ToFloat((short) (h + 1));
      double mid = ((double) v + next) / 2;
      assertEquals(Float16.round((float) mid), Float16.round(mid), "midpoint above half " + h);
      assertEquals(v, Float16.round(Math.nextDown(mid)));
      assertEquals(next, Float16.round(Math.nextUp(mid)));
    }
  }

  @Test
  void dtypeParsesConfigSpellings() {
    assertEquals(DType.BF16, DType.parse("torch.bfloat16"));
    assertEquals(DType.F16, DType.parse("half"));
    assertEquals(DType.F32, DType.parse("fp32"));
    IllegalArgumentException e =
        org.junit.jupiter.api.Assertions.assertThrows(
            IllegalArgumentException.class, () -> DType.parse("float64"));
    assertEquals(
        "unknown floating-point type 'float64': expected one of float16 (fp16), bfloat16 (bf16),"
            + " float32 (fp32)",
        e.getMessage());
  }
}
