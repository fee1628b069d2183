package io.q4spark.kernels;

import io.q4spark.kernels.repack.Int4Layout;
import io.q4spark.kernels.repack.PackedInt4Matrix;
import java.util.Random;

/** Random layers and activations for conformance tests; every test prints its seed on failure. */
public final class RandomLayers {
  private RandomLayers() {}

  /**
   * Random codes, scales (0.05 * U(0,1), as vLLM's test), zeros, act-order permutation and bias.
   */
  public static QuantizedLinear layer(LinearLayerConfig c, Random r, boolean withBias) {
    int k = c.k();
    int n = c.n();
    int groups = c.numGroups();
    byte[] codes = new byte[k * n];
    for (int i = 0; i < codes.length; i++) {
      codes[i] = (byte) r.nextInt(16);
    }
    float[] scales = new float[groups * n];
    for (int i = 0; i < scales.length; i++) {
      scales[i] = c.actType().round(0.05f * r.nextFloat() + 1e-3f);
    }
    PackedInt4Matrix zeros = null;
    if (c.zeroPoints()) {
      byte[] z = new byte[groups * n];
      for (int i = 0; i < z.length; i++) {
        z[i] = (byte) r.nextInt(16);
      }
      zeros = PackedInt4Matrix.fromCodes(Int4Layout.K_N8, groups, n, z);
    }
    int[] gIdx = null;
    if (c.hasGIdx()) {
      // act-order: a permutation of the default k / G assignment.
      gIdx = new int[k];
      for (int i = 0; i < k; i++) {
        gIdx[i] = i / c.effectiveGroupSize();
      }
      for (int i = k - 1; i > 0; i--) {
        int j = r.nextInt(i + 1);
        int t = gIdx[i];
        gIdx[i] = gIdx[j];
        gIdx[j] = t;
      }
    }
    float[] bias = null;
    if (withBias) {
      bias = new float[n];
      for (int i = 0; i < n; i++) {
        bias[i] = c.actType().round((float) r.nextGaussian() * 0.1f);
      }
    }
    return new QuantizedLinear(
        c, PackedInt4Matrix.fromCodes(Int4Layout.K_N8, k, n, codes), scales, zeros, gIdx, bias);
  }

  /** 0.25 * N(0, 1) activations, as vLLM's test, rounded to the activation dtype. */
  public static float[] activations(int rows, int k, DType act, Random r) {
    float[] x = new float[rows * k];
    for (int i = 0; i < x.length; i++) {
      x[i] = act.round(0.25f * (float) r.nextGaussian());
    }
    return x;
  }

  /**
   * An independent fp64 evaluation of the W4A16 math: dequantized weight rounded to the activation
   * dtype, exact products, sum in double, bias added; no output rounding.
   */
  public static double[] w4a16Exact(QuantizedLinear l, float[] x, int rows) {
    LinearLayerConfig c = l.config();
    double[] y = new double[rows * c.n()];
    for (int m = 0; m < rows; m++) {
      for (int n = 0; n < c.n(); n++) {
        double acc = 0;
        for (int k = 0; k < c.k(); k++) {
          float s = c.actType().round(l.scales()[l.group(k) * c.n() + n]);
          float w = c.actType().round(l.value(k, n) * s);
          acc += (double) x[m * c.k() + k] * w;
        }
        if (l.bias() != null) {
          acc += c.actType().round(l.bias()[n]);
        }
        y[m * c.n() + n] = acc;
      }
    }
    return y;
  }
}
