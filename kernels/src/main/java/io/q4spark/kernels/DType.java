package io.q4spark.kernels;

import java.util.Locale;

/**
 * Floating-point types of activations, scales and outputs. Values of every type are carried in Java
 * {@code float}s that hold exactly representable values of that type: {@link #round} is the one
 * place a float is narrowed.
 */
public enum DType {
  F16("float16", 2),
  BF16("bfloat16", 2),
  F32("float32", 4);

  private final String torchName;
  private final int bytes;

  DType(String torchName, int bytes) {
    this.torchName = torchName;
    this.bytes = bytes;
  }

  /**
   * The name PyTorch and Hugging Face configs use: {@code float16}, {@code bfloat16}, {@code
   * float32}.
   */
  public String torchName() {
    return torchName;
  }

  public int bytes() {
    return bytes;
  }

  /** Rounds to the nearest value of this type, ties to even. */
  public float round(float value) {
    return switch (this) {
      case F16 -> Float16.round(value);
      case BF16 -> BFloat16.round(value);
      case F32 -> value;
    };
  }

  /** Rounds every value of {@code values} in place ({@link #round}); nothing to do for fp32. */
  public void roundInPlace(float[] values) {
    if (this == F32) {
      return;
    }
    for (int i = 0; i < values.length; i++) {
      values[i] = round(values[i]);
    }
  }

  /**
   * Parses the spellings found in configs and on command lines: {@code float16 fp16 f16 half},
   * {@code bfloat16 bf16}, {@code float32 fp32 f32 float}, each optionally prefixed with {@code
   * torch.}.
   */
  public static DType parse(String text) {
    String t = text.trim().toLowerCase(Locale.ROOT);
    if (t.startsWith("torch.")) {
      t = t.substring("torch.".length());
    }
    return switch (t) {
      case "float16", "fp16", "f16", "half" -> F16;
      case "bfloat16", "bf16" -> BF16;
      case "float32", "fp32", "f32", "float" -> F32;
      default ->
          throw new IllegalArgumentException(
              "unknown floating-point type '"
                  + text
                  + "': expected one of float16 (fp16), bfloat16 (bf16), float32 (fp32)");
    };
  }

  @Override
  public String toString() {
    return torchName;
  }
}
