package io.q4spark.kernels.tiled;

import io.q4spark.kernels.DType;
import io.q4spark.kernels.KernelCapabilities;
import io.q4spark.kernels.KernelOptions;
import io.q4spark.kernels.LinearKernel;
import io.q4spark.kernels.LinearLayerConfig;
import io.q4spark.kernels.PreparedLinear;
import io.q4spark.kernels.QuantScheme;
import io.q4spark.kernels.QuantizedLinear;
import io.q4spark.kernels.ScalarType;
import io.q4spark.kernels.repack.Int4Layout;
import java.util.EnumSet;
import java.util.List;

/**
 * A portable Java port of the structure of vLLM's {@code TritonW4A16LinearKernel}: the same
 * N-packed [K, N/8] weights, [K/G, N] scales and [K/G, N/8] zeros, the same block table by M,
 * BLOCK_K clamped to the group size so that each K tile lies inside one group, and the same {@code
 * can_implement} rules and messages (group sizes -1, 32, 64, 128, 256 or the full K; N % 8; no
 * act-order). Each weight tile is dequantized once into a small buffer and reused by every row of
 * the M block:
 *
 * <pre>
 *   for each block (m0, n0) of BLOCK_M x BLOCK_N outputs:
 *     acc[BLOCK_M][BLOCK_N] = 0                                 fp32
 *     for k0 in 0, BLOCK_K, 2 BLOCK_K, ...:                     g = k0 / G, one scale row per tile
 *       tile[kk][nn] = round_act((code - zero(g)) * scale(g))   BLOCK_K x BLOCK_N, dequantized once
 *       acc[mm][nn] += x[m0 + mm][k0 + kk] * tile[kk][nn]       for every kk in order
 *     out = round_out(acc), then round_out(out + bias)
 * </pre>
 *
 * Each output still sums its K products in order of k, the reference's order, so the results equal
 * {@code ScalarW4A16Kernel}'s bit for bit. The inner loop over {@code nn} runs over contiguous
 * floats, which HotSpot's C2 compiles to SIMD instructions.
 */
public final class TiledW4A16Kernel implements LinearKernel {
  /** vLLM's Triton kernel group sizes. */
  private static final int[] GROUP_SIZES = {-1, 32, 64, 128, 256};

  private static final KernelCapabilities CAPABILITIES =
      new KernelCapabilities(
          QuantScheme.W4A16,
          List.of(ScalarType.UINT4B8, ScalarType.UINT4),
          EnumSet.of(DType.F16, DType.BF16),
          GROUP_SIZES,
          true,
          8,
          8,
          true,
          false);

  /** The seed's CUDA block table: (BLOCK_M, BLOCK_N, BLOCK_K) by M. */
  static int[] blockShape(int rows) {
    if (rows <= 32) {
      return new int[] {32, 64, 32};
    } else if (rows <= 64) {
      return new int[] {64, 64, 32};
    }
    return new int[] {128, 128, 32};
  }

  @Override
  public KernelCapabilities capabilities() {
    return CAPABILITIES;
  }

  @Override
  public PreparedLinear prepare(QuantizedLinear layer, KernelOptions options) {
    return new Prepared(layer);
  }

  private static final class Prepared implements PreparedLinear {
    private final LinearLayerConfig config;
    private final int[] qweight;
    private final int[] qzeros;
    private final float[] scales;
    private final int codeZero;

    Prepared(QuantizedLinear layer) {
      this.config = layer.config();
      this.qweight = layer.weight().toLayout(Int4Layout.K_N8).words();
      this.qzeros = layer.zeros() == null ? null : layer.zeros().toLayout(Int4Layout.K_N8).words();
      this.scales = layer.scalesIn(config.actType());
      this.codeZero = QuantizedLinear.codeZero(config.weightType());
    }

    @Override
    public LinearLayerConfig config() {
      return config;
    }

    @Override
    public String kernel() {
      return "TiledW4A16Kernel";
    }

    @Override
    public void apply(float[] x, int rows, float[] bias, float[] out) {
      int kDim = config.k();
      int nDim = config.n();
      int groupSize = config.effectiveGroupSize();
      int[] block = blockShape(rows);
      int blockM = block[0];
      int blockN = block[1];
      int blockK = Math.min(block[2], groupSize);
      DType act = config.actType();
      DType outType = config.outType();
      float[] tile = new float[blockK * blockN];
      float[] acc = new float[blockM * blockN];
      int wordsPerRow = nDim / Int4Layout.PACK;

      for (int m0 = 0; m0 < rows; m0 += blockM) {
        int mEnd = Math.min(m0 + blockM, rows);
        for (int n0 = 0; n0 < nDim; n0 += blockN) {
          int nLen = Math.min(blockN, nDim - n0);
          java.util.Arrays.fill(acc, 0f);
          for (int k0 = 0; k0 < kDim; k0 += blockK) {
            int kLen = Math.min(blockK, kDim - k0);
            int g = k0 / groupSize;
            // Dequantize the BLOCK_K x BLOCK_N tile once: nibble n % 8 of word [k, n / 8].
            for (int kk = 0; kk < kLen; kk++) {
              int rowBase = (k0 + kk) * wordsPerRow;
              for (int nn = 0; nn < nLen; nn++) {
                int n = n0 + nn;
                int code = (qweight[rowBase + (n >>> 3)] >>> ((n & 7) << 2)) & 0xF;
                int zero =
                    qzeros == null
                        ? codeZero
                        : (qzeros[g * wordsPerRow + (n >>> 3)] >>> ((n & 7) << 2)) & 0xF;
                tile[kk * blockN + nn] = act.round((code - zero) * scales[g * nDim + n]);
              }
            }
            for (int m = m0; m < mEnd; m++) {
              int accBase = (m - m0) * blockN;
              int xBase = m * kDim + k0;
              for (int kk = 0; kk < kLen; kk++) {
                float a = x[xBase + kk];
                int tileBase = kk * blockN;
                for (int nn = 0; nn < nLen; nn++) {
                  acc[accBase + nn] += a * tile[tileBase + nn];
                }
              }
            }
          }
          for (int m = m0; m < mEnd; m++) {
            int accBase = (m - m0) * blockN;
            for (int nn = 0; nn < nLen; nn++) {
              float y = outType.round(acc[accBase + nn]);
              if (bias != null) {
                y = outType.round(y + bias[n0 + nn]);
              }
              out[m * nDim + n0 + nn] = y;
            }
          }
        }
      }
    }
  }
}
