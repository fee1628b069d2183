package io.q4spark.kernels.cuda;

import io.q4spark.kernels.LinearLayerConfig;
import io.q4spark.kernels.QuantizedLinear;

/**
 * A W4A8 layer packed for {@code w4a8_gemm.cu}: codes {@code value + 8} (0..15, the unsigned B
 * operand of the s8 x u8 mma) in the k32 mma layout, fp32 weight scales permuted per 64-column
 * strip to the accumulator order, K padded to the pipeline's 128 and N to the strip.
 *
 * <pre>
 *   words[((strip * Kp / 32 + kt) * 32 + lane) * 8 + j], nibble r (0..7) holds code(k, n) of
 *     n = 64 strip + 8 j + lane / 4
 *     k = 32 kt + 4 (lane % 4) + (r &gt;&gt; 1) + ((r &amp; 1) == 1 ? 16 : 0)
 *
 *   scales[g * Np + 64 strip + ((c % 8) / 2) * 16 + (c / 8) * 2 + c % 2] = scale(g, 64 strip + c)
 * </pre>
 *
 * {@code word & 0x0F0F0F0F} and {@code (word >>> 4) & 0x0F0F0F0F} are the two B registers of n8
 * tile j (k and k + 16); a lane's sixteen accumulator columns {@code 8 j + 2 (lane % 4) + e} read
 * their scales as 64 contiguous bytes. Padding codes are 8 (value 0) with scale 0.
 *
 * @param k the layer's K
 * @param n the layer's N
 * @param kPadded K rounded up to {@link #K_TILE}
 * @param nPadded N rounded up to {@link CudaW4A16Layout#STRIP}
 * @param groupSize G, with -1 resolved to K
 * @param scaleRows rows of {@code scales}: every group a padded k falls in
 * @param words packed codes, {@code nPadded * kPadded / 8}
 * @param scales fp32 scales (values of the activation dtype), {@code scaleRows * nPadded}
 * @param permutation act-order row order, or null
 */
public record CudaW4A8Layout(
    int k,
    int n,
    int kPadded,
    int nPadded,
    int groupSize,
    int scaleRows,
    int[] words,
    float[] scales,
    int[] permutation) {

  /** K per pipeline stage: one 128-byte row of int8 activation codes. */
  public static final int K_TILE = 128;

  private static final int STRIP = CudaW4A16Layout.STRIP;

  /** The code of a weight of value 0: the kernel's B operand is {@code value + 8}. */
  private static final int ZERO_CODE = 8;

  /** Packs {@code layer} (checked by the kernel's capabilities) for the CUDA W4A8 kernel. */
  public static CudaW4A8Layout pack(QuantizedLinear layer) {
    LinearLayerConfig c = layer.config();
    int k = c.k();
    int n = c.n();
    int kp = CudaW4A16Layout.roundUp(k, K_TILE);
    int np = CudaW4A16Layout.roundUp(n, STRIP);
    int g = c.effectiveGroupSize();
    int rows = (kp - 1) / g + 1;
    int[] perm = ActOrderPermutation.of(layer, "CudaW4A8Kernel");
    int[] words = new int[np / 8 * kp];
    for (int strip = 0; strip < np / STRIP; strip++) {
      for (int kt = 0; kt < kp / 32; kt++) {
        for (int lane = 0; lane < 32; lane++) {
          for (int j = 0; j < 8; j++) {
            int col = STRIP * strip + 8 * j + lane / 4;
            int word = 0;
            for (int r = 0; r < 8; r++) {
              int row = 32 * kt + 4 * (lane % 4) + (r >> 1) + ((r & 1) == 1 ? 16 : 0);
              int code = ZERO_CODE;
              if (col < n && row < k) {
                code = layer.value(perm == null ? row : perm[row], col) + ZERO_CODE;
              }
              word |= code << (4 * r);
            }
            words[wordIndex(kp, strip, kt, lane, j)] = word;
          }
        }
      }
    }
    float[] s = layer.scalesIn(c.actType());
    float[] scales = new float[rows * np];
    int groups = c.numGroups();
    for (int row = 0; row < groups; row++) {
      for (int col = 0; col < n; col++) {
        scales[row * np + permutedColumn(col)] = s[row * n + col];
      }
    }
    return new CudaW4A8Layout(k, n, kp, np, g, rows, words, scales, perm);
  }

  /** The code of padded position (k, n), k in the permuted order: the inverse, for tests. */
  public int code(int kRow, int col) {
    int c = col % STRIP;
    int kk = kRow % 32;
    int lane = (c % 8) * 4 + (kk % 16) / 4;
    int r = ((kk % 4) << 1) | (kk >= 16 ? 1 : 0);
    int word = words[wordIndex(kPadded, col / STRIP, kRow / 32, lane, c / 8)];
    return (word >>> (4 * r)) & 0xF;
  }

  /** Bytes the kernel reads per call: weights and scales. */
  public long weightBytes() {
    return 4L * words.length + 4L * scales.length;
  }

  static int wordIndex(int kp, int strip, int kt, int lane, int j) {
    return ((strip * (kp / 32) + kt) * 32 + lane) * 8 + j;
  }

  /** Where column {@code col} of a scale row is stored: the accumulator order of its lane. */
  static int permutedColumn(int col) {
    int c = col % STRIP;
    return col - c + ((c % 8) / 2) * 16 + (c / 8) * 2 + c % 2;
  }
}
