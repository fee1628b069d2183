package io.q4spark.jobs.bench;

import io.q4spark.kernels.DType;
import io.q4spark.kernels.LinearLayerConfig;
import io.q4spark.kernels.QuantScheme;
import io.q4spark.kernels.QuantizedLinear;
import io.q4spark.kernels.ScalarType;
import io.q4spark.kernels.repack.Int4Layout;
import io.q4spark.kernels.repack.PackedInt4Matrix;
import java.util.SplittableRandom;

/**
 * One symmetric int4 weight matrix with per-group scales, the single source every backend of a
 * benchmark row is built from: our kernels get it as a {@link QuantizedLinear}, ONNX Runtime as
 * MatMulNBits tensors or as dequantized fp32.
 *
 * <pre>
 *   code(k, n)   uniform in 0..15, stored [K, N/8] (Int4Layout.K_N8)
 *   scale(g, n)  0.05 * U(0, 1) + 1e-3, rounded to fp16 (so it is the same in fp16, fp32 and the
 *                kernels' copies), stored [K/G, N]
 *   w(k, n)      (code(k, n) - 8) * scale(k / G, n)
 * </pre>
 *
 * The value is the same for uint4b8 (W4A16) and int4 (W4A8, codes stored as value + 8) layers.
 *
 * @param k input features
 * @param n output features
 * @param group G, the input features sharing one scale
 * @param codes [K, N] codes
 * @param scales [K/G, N] scales
 */
record BenchWeights(int k, int n, int group, PackedInt4Matrix codes, float[] scales) {
  /** The code of weight value 0: uint4b8's bias, and the offset of stored int4 codes. */
  static final int ZERO = 8;

  /** Random weights, reproducible from {@code seed}. */
  static BenchWeights random(int k, int n, int group, long seed) {
    if (k % group != 0 || n % Int4Layout.PACK != 0 || group % 2 != 0) {
      throw new IllegalArgumentException(
          "benchmark layers need K a multiple of G, N a multiple of 8 and an even G, but K="
              + k
              + ", N="
              + n
              + ", G="
              + group);
    }
    SplittableRandom r = new SplittableRandom(seed);
    // Every bit pattern of a word is 8 uniform codes.
    int[] words = new int[Math.toIntExact((long) k * n / Int4Layout.PACK)];
    for (int i = 0; i < words.length; i++) {
      words[i] = r.nextInt();
    }
    float[] scales = new float[(k / group) * n];
    for (int i = 0; i < scales.length; i++) {
      scales[i] = DType.F16.round(0.05f * (float) r.nextDouble() + 1e-3f);
    }
    return new BenchWeights(
        k, n, group, new PackedInt4Matrix(Int4Layout.K_N8, k, n, words), scales);
  }

  /** The same values in new arrays: a cold-cache copy. */
  BenchWeights copy() {
    return new BenchWeights(
        k,
        n,
        group,
        new PackedInt4Matrix(codes.layout(), k, n, codes.words().clone()),
        scales.clone());
  }

  int groups() {
    return k / group;
  }

  /** Bytes a call must read: the packed int4 codes plus the fp32 scales. */
  long packedBytes() {
    return (long) k * n / 2 + (long) groups() * n * Float.BYTES;
  }

  /** Bytes of the dequantized fp32 weight. */
  long denseBytes() {
    return (long) k * n * Float.BYTES;
  }

  /** The layer config for {@code scheme}: uint4b8 for W4A16, int4 for W4A8. */
  LinearLayerConfig config(QuantScheme scheme, DType act) {
    ScalarType type = scheme == QuantScheme.W4A8 ? ScalarType.INT4 : ScalarType.UINT4B8;
    return LinearLayerConfig.of(
        "bench." + k + "x" + n, k, n, type, act, group, false, false, scheme);
  }

  /** The layer for {@code config} (from {@link #config}), sharing these arrays. */
  QuantizedLinear layer(LinearLayerConfig config) {
    return new QuantizedLinear(config, codes, scales, null, null, null);
  }

  /**
   * MatMulNBits' B: uint8 [N, K/G, G/2]. Byte {@code n * K/2 + k/2} holds code(k, n) in its low
   * nibble for even k and in its high nibble for odd k (blocks of G/2 bytes are contiguous along K,
   * so the block index drops out of the offset).
   */
  byte[] matMulNBitsWeights() {
    byte[] b = new byte[Math.toIntExact((long) n * k / 2)];
    int halfK = k / 2;
    // Tiled over (k, n) so that the strided writes of a tile stay in cache.
    final int tile = 64;
    for (int k0 = 0; k0 < k; k0 += tile) {
      for (int n0 = 0; n0 < n; n0 += tile) {
        int kEnd = Math.min(k, k0 + tile);
        int nEnd = Math.min(n, n0 + tile);
        for (int kk = k0; kk < kEnd; kk += 2) {
          for (int nn = n0; nn < nEnd; nn++) {
            int lo = codes.code(kk, nn);
            int hi = codes.code(kk + 1, nn);
            b[nn * halfK + kk / 2] = (byte) (lo | hi << 4);
          }
        }
      }
    }
    return b;
  }

  /** MatMulNBits' scales: float [N, K/G], the transpose of ours. */
  float[] matMulNBitsScales() {
    int groups = groups();
    float[] t = new float[scales.length];
    for (int g = 0; g < groups; g++) {
      for (int nn = 0; nn < n; nn++) {
        t[nn * groups + g] = scales[g * n + nn];
      }
    }
    return t;
  }

  /** The dequantized weight, float [K, N] row-major: {@code (code - 8) * scale}, exact in fp32. */
  float[] dequantized() {
    float[] w = new float[Math.toIntExact((long) k * n)];
    for (int kk = 0; kk < k; kk++) {
      int g = kk / group;
      for (int nn = 0; nn < n; nn++) {
        w[kk * n + nn] = (codes.code(kk, nn) - ZERO) * scales[g * n + nn];
      }
    }
    return w;
  }

  /** 0.25 * N(0, 1) activations, [rows, K], rounded to {@code act}. */
  static float[] activations(int rows, int k, DType act, long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    float[] x = new float[Math.multiplyExact(rows, k)];
    for (int i = 0; i < x.length; i++) {
      x[i] = act.round((float) (0.25 * gaussian(r)));
    }
    return x;
  }

  /** A standard normal value (Marsaglia's polar method). */
  private static double gaussian(SplittableRandom r) {
    double u;
    double v;
    double s;
    do {
      u = 2 * r.nextDouble() - 1;
      v = 2 * r.nextDouble() - 1;
      s = u * u + v * v;
    } while (s >= 1 || s == 0);
    return u * Math.sqrt(-2 * Math.log(s) / s);
  }
}
