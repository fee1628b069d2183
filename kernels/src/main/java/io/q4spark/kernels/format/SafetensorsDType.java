package io.q4spark.kernels.format;

import java.util.Arrays;

/**
 * Element types of a safetensors tensor, spelled as in the {@code dtype} field of the header. All
 * are byte-addressable and stored little-endian. Later revisions of the format add further (some
 * sub-byte) types; they are rejected as unknown until a reader here needs them, rather than
 * misread.
 */
public enum SafetensorsDType {
  BOOL(1),
  U8(1),
  I8(1),
  F8_E5M2(1),
  F8_E4M3(1),
  I16(2),
  U16(2),
  F16(2),
  BF16(2),
  I32(4),
  U32(4),
  F32(4),
  F64(8),
  I64(8),
  U64(8);

  private static final SafetensorsDType[] VALUES = values();

  private final int byteSize;

  SafetensorsDType(int byteSize) {
    this.byteSize = byteSize;
  }

  /** The safetensors type that stores values of {@code type}. */
  public static SafetensorsDType of(io.q4spark.kernels.DType type) {
    return switch (type) {
      case F16 -> F16;
      case BF16 -> BF16;
      case F32 -> F32;
    };
  }

  /** Bytes per element. */
  public int byteSize() {
    return byteSize;
  }

  /**
   * The type spelled {@code name}, exactly and case-sensitively as the format writes it.
   *
   * @param context what the name belongs to, for the message, e.g. {@code tensor 'w' in
   *     /a/b.safetensors}
   * @throws SafetensorsException if no type has that name
   */
  public static SafetensorsDType parse(String name, String context) {
    for (SafetensorsDType type : VALUES) {
      if (type.name().equals(name)) {
        return type;
      }
    }
    throw new SafetensorsException(
        "unknown dtype '"
            + name
            + "' for "
            + context
            + "; expected one of "
            + Arrays.toString(VALUES));
  }
}
