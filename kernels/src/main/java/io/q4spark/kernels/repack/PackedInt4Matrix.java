package io.q4spark.kernels.repack;

import java.util.Arrays;

/**
 * A [K, N] matrix of 4-bit codes (0..15) packed into int32 words in one of the {@link Int4Layout}s.
 * Immutable by convention: the word array is not copied, so callers must not change it afterwards.
 * Repacking ({@link #toLayout}) is a pure function; converting back gives the same words.
 */
public final class PackedInt4Matrix {
  private final Int4Layout layout;
  private final int rows;
  private final int cols;
  private final int[] words;

  /**
   * @param rows K (or the number of groups, for zero points)
   * @param cols N
   * @param words the packed words in {@code layout}
   */
  public PackedInt4Matrix(Int4Layout layout, int rows, int cols, int[] words) {
    int packed = layout.packsK() ? rows : cols;
    if (rows <= 0 || cols <= 0 || packed % Int4Layout.PACK != 0) {
      throw new IllegalArgumentException(
          "a "
              + layout
              + " "
              + layout.shapeFormula()
              + " packing needs positive sizes and its packed axis divisible by 8, but K="
              + rows
              + ", N="
              + cols);
    }
    long expected = (long) rows * cols / Int4Layout.PACK;
    if (words.length != expected) {
      throw new IllegalArgumentException(
          "a "
              + layout.shapeFormula()
              + " packing of K="
              + rows
              + ", N="
              + cols
              + " holds "
              + expected
              + " words, but "
              + words.length
              + " were given");
    }
    this.layout = layout;
    this.rows = rows;
    this.cols = cols;
    this.words = words;
  }

  /** Packs codes given in [K, N] row-major order (each 0..15). */
  public static PackedInt4Matrix fromCodes(Int4Layout layout, int rows, int cols, byte[] codes) {
    if (codes.length != rows * cols) {
      throw new IllegalArgumentException(
          "expected "
              + rows * cols
              + " codes for K="
              + rows
              + ", N="
              + cols
              + ", got "
              + codes.length);
    }
    int[] words = new int[rows * cols / Int4Layout.PACK];
    PackedInt4Matrix m = new PackedInt4Matrix(layout, rows, cols, words);
    for (int k = 0; k < rows; k++) {
      for (int n = 0; n < cols; n++) {
        int code = codes[k * cols + n];
        if (code < 0 || code > 15) {
          throw new IllegalArgumentException(
              "code at (k=" + k + ", n=" + n + ") is " + code + ", expected 0..15");
        }
        // OR into the word: arithmetic sums of shifted nibbles would overflow int32.
        words[layout.wordIndex(k, n, rows, cols)] |= code << layout.shift(k, n);
      }
    }
    return m;
  }

  /**
   * Packs signed int4 values stored one per byte in an [N, K] matrix (the compressed-tensors W4A8
   * {@code weight}), as codes {@code value + offset}; vLLM's XPU W4A8 kernel uses offset 8.
   */
  public static PackedInt4Matrix fromInt8NK(
      Int4Layout layout, int k, int n, byte[] valuesNK, int offset) {
    byte[] codes = new byte[k * n];
    for (int row = 0; row < n; row++) {
      for (int col = 0; col < k; col++) {
        codes[col * n + row] = (byte) (valuesNK[row * k + col] + offset);
      }
    }
    return fromCodes(layout, k, n, codes);
  }

  /** The inverse of {@link #fromInt8NK}: values {@code code - offset} in an [N, K] byte matrix. */
  public byte[] toInt8NK(int offset) {
    byte[] values = new byte[rows * cols];
    for (int k = 0; k < rows; k++) {
      for (int n = 0; n < cols; n++) {
        values[n * rows + k] = (byte) (code(k, n) - offset);
      }
    }
    return values;
  }

  public Int4Layout layout() {
    return layout;
  }

  /** K, or the number of groups for zero points. */
  public int rows() {
    return rows;
  }

  /** N. */
  public int cols() {
    return cols;
  }

  /** The packed words (shared, not copied). */
  public int[] words() {
    return words;
  }

  /** The stored tensor's shape. */
  public long[] shape() {
    return layout.shape(rows, cols);
  }

  /** Code at (k, n), 0..15. */
  public int code(int k, int n) {
    return (words[layout.wordIndex(k, n, rows, cols)] >>> layout.shift(k, n)) & 0xF;
  }

  /** All codes in [K, N] row-major order. */
  public byte[] codes() {
    byte[] codes = new byte[rows * cols];
    for (int k = 0; k < rows; k++) {
      for (int n = 0; n < cols; n++) {
        codes[k * cols + n] = (byte) code(k, n);
      }
    }
    return codes;
  }

  /** The same codes in another layout (this object when the layout is already {@code target}). */
  public PackedInt4Matrix toLayout(Int4Layout target) {
    if (target == layout) {
      return this;
    }
    int packed = target.packsK() ? rows : cols;
    if (packed % Int4Layout.PACK != 0) {
      throw new IllegalArgumentException(
          "cannot repack K="
              + rows
              + ", N="
              + cols
              + " into "
              + target.shapeFormula()
              + ": "
              + (target.packsK() ? "K" : "N")
              + " is not divisible by 8");
    }
    int[] out = new int[words.length];
    for (int k = 0; k < rows; k++) {
      for (int n = 0; n < cols; n++) {
        out[target.wordIndex(k, n, rows, cols)] |= code(k, n) << target.shift(k, n);
      }
    }
    return new PackedInt4Matrix(target, rows, cols, out);
  }

  /**
   * The same codes with each nibble replaced by {@code (code + delta) mod 16}: GPTQ v1 checkpoints
   * store zero points minus one, and adding one back (mod 16) gives the true zero.
   */
  public PackedInt4Matrix addToEveryCode(int delta) {
    int[] out = new int[words.length];
    for (int i = 0; i < words.length; i++) {
      int w = words[i];
      int r = 0;
      for (int j = 0; j < Int4Layout.PACK; j++) {
        int code = ((w >>> (4 * j)) + delta) & 0xF;
        r |= code << (4 * j);
      }
      out[i] = r;
    }
    return new PackedInt4Matrix(layout, rows, cols, out);
  }

  /** Whether both hold the same codes, whatever their layouts. */
  public boolean sameCodes(PackedInt4Matrix other) {
    return rows == other.rows
        && cols == other.cols
        && Arrays.equals(toLayout(Int4Layout.K_N8).words, other.toLayout(Int4Layout.K_N8).words);
  }

  @Override
  public String toString() {
    return "PackedInt4Matrix["
        + layout
        + " "
        + layout.shapeFormula()
        + ", K="
        + rows
        + ", N="
        + cols
        + "]";
  }
}
