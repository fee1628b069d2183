package io.q4spark.kernels.repack;

/**
 * The ways a [K, N] matrix of 4-bit codes is packed into int32 words, 8 codes per word, element 0
 * in the least significant nibble. K is the input (reduction) dimension, N the output dimension.
 * Zero points use the same layouts with K replaced by the number of groups.
 *
 * <pre>
 *   layout    tensor shape   packed axis   where it comes from
 *   N_K8      [N, K/8]       K             compressed-tensors weight_packed; the seed W4A8 weight
 *   K8_N      [K/8, N]       K             GPTQ qweight
 *   K_N8      [K, N/8]       N             the seed Triton kernel's qweight; GPTQ and kernel qzeros
 *   N8_K      [N/8, K]       N             compressed-tensors weight_zero_point ([N/8, K/G])
 *
 *   N_K8:  code(k, n) = (w[n * (K/8) + k/8] >>> 4 * (k % 8)) &amp; 0xF
 *   K8_N:  code(k, n) = (w[(k/8) * N + n]   >>> 4 * (k % 8)) &amp; 0xF
 *   K_N8:  code(k, n) = (w[k * (N/8) + n/8] >>> 4 * (n % 8)) &amp; 0xF
 *   N8_K:  code(k, n) = (w[(n/8) * K + k]   >>> 4 * (n % 8)) &amp; 0xF
 * </pre>
 */
public enum Int4Layout {
  N_K8(true),
  K8_N(true),
  K_N8(false),
  N8_K(false);

  /** Codes packed per int32 word. */
  public static final int PACK = 8;

  private final boolean packsK;

  Int4Layout(boolean packsK) {
    this.packsK = packsK;
  }

  /** Whether the K axis is the packed one (else N is). */
  public boolean packsK() {
    return packsK;
  }

  /** The stored tensor's shape for a [K, N] code matrix. */
  public long[] shape(int k, int n) {
    return switch (this) {
      case N_K8 -> new long[] {n, k / PACK};
      case K8_N -> new long[] {k / PACK, n};
      case K_N8 -> new long[] {k, n / PACK};
      case N8_K -> new long[] {n / PACK, k};
    };
  }

  /** Index of the word holding code (k, n). */
  int wordIndex(int k, int n, int rows, int cols) {
    return switch (this) {
      case N_K8 -> n * (rows / PACK) + k / PACK;
      case K8_N -> (k / PACK) * cols + n;
      case K_N8 -> k * (cols / PACK) + n / PACK;
      case N8_K -> (n / PACK) * rows + k;
    };
  }

  /** Bit offset of code (k, n) inside its word. */
  int shift(int k, int n) {
    return 4 * ((packsK ? k : n) % PACK);
  }

  /** A short description such as {@code [N, K/8]}, for messages. */
  public String shapeFormula() {
    return switch (this) {
      case N_K8 -> "[N, K/8]";
      case K8_N -> "[K/8, N]";
      case K_N8 -> "[K, N/8]";
      case N8_K -> "[N/8, K]";
    };
  }
}
