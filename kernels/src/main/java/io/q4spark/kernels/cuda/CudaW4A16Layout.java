package io.q4spark.kernels.cuda;

import io.q4spark.kernels.BFloat16;
import io.q4spark.kernels.DType;
import io.q4spark.kernels.Float16;
import io.q4spark.kernels.LinearLayerConfig;
import io.q4spark.kernels.QuantizedLinear;

/**
 * A W4A16 layer packed for {@code w4a16_gemm.cu}: weights in the mma layout, scales and zero points
 * permuted per 64-column strip, K padded to the pipeline's 64 and N to the 64-column strip (padding
 * weights are zero, padding scales 0), rows sorted by group for act-order.
 *
 * <pre>
 *   words[((strip * Kp / 16 + kt) * 32 + lane) * 4 + p], nibble r (0..7) holds code(k, n) of
 *     n = 64 strip + 8 (2p + ((r >> 1) &amp; 1)) + lane / 4
 *     k = 16 kt + 2 (lane % 4) + ((r &amp; 1) == 1 ? 8 : 0) + (r &gt;= 4 ? 1 : 0)
 *
 *   scales[g * Np + 64 strip + (c % 8) * 8 + c / 8] = scale(g, 64 strip + c)       c = 0..63
 *   zeros[same index]                               = magic + zero(g, n)   (fp16 1024, bf16 128)
 * </pre>
 *
 * Within a warp, lane l takes the 16 bytes {@code words[(... + l) * 4 .. + 3]}: the B fragments of
 * eight n8 tiles for one k16 step. A nibble shifted into the low mantissa bits of the magic value
 * is the float {@code magic + code}, so the kernel dequantizes with one AND/OR, one subtraction of
 * {@code magic + zero} (exact) and one multiplication by the scale (the reference's one rounding).
 *
 * @param k the layer's K
 * @param n the layer's N
 * @param kPadded K rounded up to {@link #K_TILE}
 * @param nPadded N rounded up to {@link #STRIP}
 * @param groupSize G, with -1 resolved to K
 * @param scaleRows rows of {@code scales}: every group a padded k falls in
 * @param words packed codes, {@code nPadded * kPadded / 8}
 * @param scales 16-bit scale bits of the activation dtype, {@code scaleRows * nPadded}
 * @param zeros 16-bit magic-plus-zero bits, same shape, or null for symmetric weights
 * @param permutation act-order row order ({@code perm[j]} = original input feature), or null
 */
public record CudaW4A16Layout(
    int k,
    int n,
    int kPadded,
    int nPadded,
    int groupSize,
    int scaleRows,
    int[] words,
    short[] scales,
    short[] zeros,
    int[] permutation) {

  /** Columns per warp: one 16-byte load per lane covers 64 columns of a k16 step. */
  public static final int STRIP = 64;

  /**
   * K is padded to this: the large tile's pipeline stage and the small-M kernel's chunk. The medium
   * tile's 256-k stages stop at the padded K (a partial last stage).
   */
  public static final int K_TILE = 64;

  /** fp16 1024.0: its 10 mantissa bits take a 4-bit code exactly. */
  static final short FP16_MAGIC = 0x6400;

  /** bf16 128.0: its 7 mantissa bits take a 4-bit code exactly. */
  static final short BF16_MAGIC = 0x4300;

  /** Packs {@code layer} (checked by the kernel's capabilities) for the CUDA W4A16 kernel. */
  public static CudaW4A16Layout pack(QuantizedLinear layer) {
    LinearLayerConfig c = layer.config();
    int k = c.k();
    int n = c.n();
    int kp = roundUp(k, K_TILE);
    int np = roundUp(n, STRIP);
    int g = c.effectiveGroupSize();
    int rows = (kp - 1) / g + 1;
    int[] perm = ActOrderPermutation.of(layer, "CudaW4A16Kernel");
    boolean zp = layer.zeros() != null;
    int codeZero = QuantizedLinear.codeZero(c.weightType());

    int[] words = new int[np / 8 * kp];
    for (int strip = 0; strip < np / STRIP; strip++) {
      for (int kt = 0; kt < kp / 16; kt++) {
        for (int lane = 0; lane < 32; lane++) {
          for (int p = 0; p < 4; p++) {
            int word = 0;
            for (int r = 0; r < 8; r++) {
              int col = column(strip, lane, p, r);
              int row = row(kt, lane, r);
              int code;
              if (col < n && row < k) {
                code = layer.weight().code(perm == null ? row : perm[row], col);
              } else {
                code = zp ? 0 : codeZero; // d = 0: padding contributes nothing
              }
              word |= code << (4 * r);
            }
            words[wordIndex(kp, strip, kt, lane, p)] = word;
          }
        }
      }
    }

    DType act = c.actType();
    float[] s = layer.scalesIn(act);
    short[] scales = new short[rows * np];
    short[] zeros = zp ? new short[rows * np] : null;
    short magic = act == DType.BF16 ? BF16_MAGIC : FP16_MAGIC;
    int groups = c.numGroups();
    for (int row = 0; row < rows; row++) {
      for (int col = 0; col < np; col++) {
        int at = row * np + permutedColumn(col);
        boolean real = row < groups && col < n;
        scales[at] = real ? halfBits(act, s[row * n + col]) : 0;
        if (zp) {
          zeros[at] = (short) (magic | (real ? layer.zeros().code(row, col) : 0));
        }
      }
    }
    return new CudaW4A16Layout(k, n, kp, np, g, rows, words, scales, zeros, perm);
  }

  /**
   * {@code rows} ({@link #scales} or {@link #zeros}) strip-major, for the ring kernels: the scale
   * rows of strip {@code s} contiguous, {@code out[(s * scaleRows + g) * 64 + c] = rows[g * Np + 64
   * s + c]}, so the groups a stage of one strip touches are one copy.
   */
  public short[] byStrip(short[] rows) {
    short[] out = new short[rows.length];
    for (int strip = 0; strip < nPadded / STRIP; strip++) {
      for (int g = 0; g < scaleRows; g++) {
        System.arraycopy(
            rows, g * nPadded + strip * STRIP, out, (strip * scaleRows + g) * STRIP, STRIP);
      }
    }
    return out;
  }

  /** The code of padded position (k, n), k in the permuted order: the inverse, for tests. */
  public int code(int kRow, int col) {
    int strip = col / STRIP;
    int c = col % STRIP;
    int kt = kRow / 16;
    int kk = kRow % 16;
    int lane = (c % 8) * 4 + (kk % 8) / 2;
    int j = c / 8;
    int p = j / 2;
    int r = ((j % 2) << 1) | (kk >= 8 ? 1 : 0) | ((kk % 2) << 2);
    return (words[wordIndex(kPadded, strip, kt, lane, p)] >>> (4 * r)) & 0xF;
  }

  /** Bytes the kernel reads per call: weights, scales and zero points. */
  public long weightBytes() {
    return 4L * words.length + 2L * scales.length + (zeros == null ? 0 : 2L * zeros.length);
  }

  static int column(int strip, int lane, int p, int r) {
    return STRIP * strip + 8 * (2 * p + ((r >> 1) & 1)) + lane / 4;
  }

  static int row(int kt, int lane, int r) {
    return 16 * kt + 2 * (lane % 4) + ((r & 1) == 1 ? 8 : 0) + (r >= 4 ? 1 : 0);
  }

  static int wordIndex(int kp, int strip, int kt, int lane, int p) {
    return ((strip * (kp / 16) + kt) * 32 + lane) * 4 + p;
  }

  /** Where column {@code col} of a scale row is stored: permuted within its strip. */
  static int permutedColumn(int col) {
    int c = col % STRIP;
    return col - c + (c % 8) * 8 + c / 8;
  }

  static short halfBits(DType type, float value) {
    return type == DType.BF16 ? BFloat16.fromFloat(value) : Float16.fromFloat(value);
  }

  static int roundUp(int value, int multiple) {
    return (value + multiple - 1) / multiple * multiple;
  }
}
