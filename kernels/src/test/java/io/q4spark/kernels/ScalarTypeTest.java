package io.q4spark.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class ScalarTypeTest {
  @Test
  void rangesAndBiasesMatchVllm() {
    assertEquals(0, ScalarType.UINT4.min());
    assertEquals(15, ScalarType.UINT4.max());
    assertEquals(-8, ScalarType.UINT4B8.min());
    assertEquals(7, ScalarType.UINT4B8.max());
    assertEquals(-8, ScalarType.INT4.min());
    assertEquals(7, ScalarType.INT4.max());
    assertEquals(-128, ScalarType.UINT8B128.min());
    assertEquals(127, ScalarType.UINT8B128.max());
    assertEquals(255, ScalarType.UINT8.max());
    assertEquals(4, ScalarType.INT4.sizeBits());
    assertEquals(4, ScalarType.UINT4B8.sizeBits());
    assertTrue(ScalarType.UINT4B8.hasBias());
    assertFalse(ScalarType.UINT4.hasBias());
  }

  @Test
  void idPacksFieldsFromTheLeastSignificantBit() {
    // mantissa 4 at bits 8..15, signed 0 at bit 16, bias 8 at bits 17..48.
    assertEquals((4L << 8) | (8L << 17), ScalarType.UINT4B8.id());
    assertEquals((3L << 8) | (1L << 16), ScalarType.INT4.id());
  }

  @Test
  void parsesNames() {
    assertEquals(ScalarType.UINT4B8, ScalarType.parse("uint4b8"));
    IllegalArgumentException e =
        org.junit.jupiter.api.Assertions.assertThrows(
            IllegalArgumentException.class, () -> ScalarType.parse("int3"));
    assertEquals(
        "unknown weight type 'int3': expected one of [uint4, uint4b8, int4, uint8, uint8b128]",
        e.getMessage());
  }
}
