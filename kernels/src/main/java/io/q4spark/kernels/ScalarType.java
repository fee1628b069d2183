package io.q4spark.kernels;

import java.util.List;

/**
 * An integer weight type as vLLM's {@code ScalarType} describes it: a stored unsigned or signed
 * integer of {@code sizeBits} bits whose value is {@code stored - bias}. Only integer types are
 * modelled (exponent 0); vLLM's floating-point types are out of scope.
 *
 * <pre>
 *   name       signed  bits  bias  values
 *   uint4      no      4     0     0 .. 15      (asymmetric: zero points subtracted separately)
 *   uint4b8    no      4     8     -8 .. 7      (GPTQ / compressed-tensors symmetric)
 *   int4       yes     4     0     -8 .. 7      (W4A8 checkpoints)
 *   uint8      no      8     0     0 .. 255
 *   uint8b128  no      8     128   -128 .. 127
 * </pre>
 */
public record ScalarType(String name, int mantissa, boolean signed, int bias) {
  public static final ScalarType UINT4 = new ScalarType("uint4", 4, false, 0);
  public static final ScalarType UINT4B8 = new ScalarType("uint4b8", 4, false, 8);
  public static final ScalarType INT4 = new ScalarType("int4", 3, true, 0);
  public static final ScalarType UINT8 = new ScalarType("uint8", 8, false, 0);
  public static final ScalarType UINT8B128 = new ScalarType("uint8b128", 8, false, 128);

  public static final List<ScalarType> ALL = List.of(UINT4, UINT4B8, INT4, UINT8, UINT8B128);

  /** {@code exponent + mantissa + sign bit}; the exponent is always 0 here. */
  public int sizeBits() {
    return mantissa + (signed ? 1 : 0);
  }

  public boolean hasBias() {
    return bias != 0;
  }

  /** Smallest value: the smallest stored integer minus the bias. */
  public long min() {
    long storedMin = signed ? -(1L << (sizeBits() - 1)) : 0;
    return storedMin - bias;
  }

  /** Largest value: the largest stored integer minus the bias. */
  public long max() {
    long storedMax = signed ? (1L << (sizeBits() - 1)) - 1 : (1L << sizeBits()) - 1;
    return storedMax - bias;
  }

  /**
   * vLLM's 64-bit id, packed from the least significant bit: exponent (8 bits), mantissa (8),
   * signed (1), bias (32), finite_values_only (1), nan_repr (8). Integer types have exponent 0,
   * finite false and nan_repr NONE (0).
   */
  public long id() {
    long id = 0;
    int offset = 0;
    id |= 0L << offset; // exponent
    offset += 8;
    id |= ((long) mantissa & 0xFF) << offset;
    offset += 8;
    id |= (signed ? 1L : 0L) << offset;
    offset += 1;
    id |= ((long) bias & 0xFFFF_FFFFL) << offset;
    return id;
  }

  public static ScalarType parse(String name) {
    for (ScalarType t : ALL) {
      if (t.name.equalsIgnoreCase(name.trim())) {
        return t;
      }
    }
    throw new IllegalArgumentException(
        "unknown weight type '"
            + name
            + "': expected one of "
            + ALL.stream().map(ScalarType::name).toList());
  }

  @Override
  public String toString() {
    return name;
  }
}
