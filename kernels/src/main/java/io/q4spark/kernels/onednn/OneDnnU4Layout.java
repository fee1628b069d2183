package io.q4spark.kernels.onednn;

import io.q4spark.kernels.repack.Int4Layout;
import io.q4spark.kernels.repack.PackedInt4Matrix;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * oneDNN's {@code u4} memory for a [K, N] matrix of codes with format tag {@code ab}: row-major, K
 * rows of N codes, two codes per byte, the first (even n) in the low nibble. Weights use it as [K,
 * N], per-group zero points as [K/G, N].
 *
 * <pre>
 *   u4[(k * N + n) / 2] = code(k, n) | code(k, n + 1) &lt;&lt; 4       n even
 *   code(k, n)          = (u4[(k * N + n) / 2] &gt;&gt;&gt; 4 * (n % 2)) &amp; 0xF
 *   bytes               = K * N / 2
 * </pre>
 *
 * N is a multiple of 8, so no byte spans two rows. These bytes are exactly the int32 words of
 * {@link Int4Layout#K_N8} ({@code code(k, n) = (w[k * (N/8) + n/8] >>> 4 * (n % 8)) & 0xF}) written
 * in little-endian byte order, which is how the repack computes them. It is the layout oneDNN 3.13
 * wants on AVX2: asked with {@code format_tag::any}, its weight-decompression matmul picks exactly
 * these strides {N, 1} (and oneDNN has no u4 reorder into any other layout). It is also the faster
 * of the two plain layouts on the 2-core AVX2 machine (K = N = 4096, G = 128, M = 1: 2.9 ms against
 * 4.5 ms for the K-contiguous {@code ba}).
 */
final class OneDnnU4Layout {
  private OneDnnU4Layout() {}

  /** The {@code u4} bytes of {@code codes}, as above. */
  static byte[] pack(PackedInt4Matrix codes) {
    int[] words = codes.toLayout(Int4Layout.K_N8).words();
    byte[] bytes = new byte[words.length * Integer.BYTES];
    ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asIntBuffer().put(words);
    return bytes;
  }

  /** The inverse of {@link #pack}: the codes of {@code u4} bytes holding a [rows, cols] matrix. */
  static PackedInt4Matrix unpack(byte[] u4, int rows, int cols) {
    int[] words = new int[u4.length / Integer.BYTES];
    ByteBuffer.wrap(u4).order(ByteOrder.LITTLE_ENDIAN).asIntBuffer().get(words);
    return new PackedInt4Matrix(Int4Layout.K_N8, rows, cols, words);
  }
}
