package io.q4spark.kernels.scalar;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.q4spark.kernels.DType;
import io.q4spark.kernels.Float16;
import io.q4spark.kernels.KernelOptions;
import io.q4spark.kernels.LinearLayerConfig;
import io.q4spark.kernels.Q4Linear;
import io.q4spark.kernels.QuantScheme;
import io.q4spark.kernels.QuantizedLinear;
import io.q4spark.kernels.RandomLayers;
import io.q4spark.kernels.ScalarType;
import io.q4spark.kernels.quantize.PerTokenInt8Quantizer;
import io.q4spark.kernels.tiled.TiledW4A16Kernel;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The references against independent fp64 formulations, and the tiled kernel against the reference,
 * on the shapes that break kernels: odd M, every group size, zero points, act-order, all dtypes.
 */
class ReferenceConformanceTest {
  private static final long SEED = 7_2026_11_24L;
  private static final int[] ROWS = {1, 2, 3, 7, 13, 17, 33, 118};

  /** fp32 accumulation of K <= 512 products of size ~0.1 stays within this of the exact sum. */
  private static final double FP32_SUM_TOLERANCE = 1e-4;

  private static LinearLayerConfig w4a16(
      int k, int n, int g, boolean zp, boolean actOrder, DType act) {
    return LinearLayerConfig.of(
        "test.w4a16",
        k,
        n,
        zp ? ScalarType.UINT4 : ScalarType.UINT4B8,
        act,
        g,
        zp,
        actOrder,
        QuantScheme.W4A16);
  }

  @Test
  void w4a16ReferenceMatchesExactMathWithinOneOutputRounding() {
    Random r = new Random(SEED);
    System.out.println("seed " + SEED);
    for (DType act : DType.values()) {
      for (int g : new int[] {-1, 32, 64, 128, 256}) {
        for (boolean zp : new boolean[] {false, true}) {
          for (boolean actOrder : new boolean[] {false, true}) {
            LinearLayerConfig c = w4a16(256, 24, g, zp, actOrder, act);
            QuantizedLinear l = RandomLayers.layer(c, r, true);
            int rows = ROWS[r.nextInt(ROWS.length)];
            float[] x = RandomLayers.activations(rows, c.k(), act, r);
            float[] out = new float[rows * c.n()];
            new ScalarW4A16Kernel().prepare(l).apply(x, rows, roundedBias(l), out);
            double[] exact = RandomLayers.w4a16Exact(l, x, rows);
            for (int i = 0; i < out.length; i++) {
              // One rounding of the GEMM result, one after adding the bias: each within an ulp.
              double gemm = exact[i] - act.round(l.bias()[i % c.n()]);
              double tol = ulpOf(act, gemm) + ulpOf(act, exact[i]) + FP32_SUM_TOLERANCE;
              assertEquals(exact[i], out[i], tol, c.describe() + " rows=" + rows + " at " + i);
            }
          }
        }
      }
    }
  }

  @Test
  void tiledKernelEqualsReferenceBitForBit() {
    Random r = new Random(SEED + 1);
    for (DType act : new DType[] {DType.F16, DType.BF16}) {
      for (int g : new int[] {-1, 32, 64, 128, 256}) {
        for (boolean zp : new boolean[] {false, true}) {
          for (int rows : ROWS) {
            LinearLayerConfig c = w4a16(512, 136, g, zp, false, act);
            assertTrue(new TiledW4A16Kernel().canImplement(c).accepted(), c.describe());
            QuantizedLinear l = RandomLayers.layer(c, r, rows % 2 == 1);
            float[] x = RandomLayers.activations(rows, c.k(), act, r);
            float[] ref = new float[rows * c.n()];
            float[] tiled = new float[rows * c.n()];
            new ScalarW4A16Kernel().prepare(l).apply(x, rows, roundedBias(l), ref);
            new TiledW4A16Kernel().prepare(l).apply(x, rows, roundedBias(l), tiled);
            assertArrayEquals(ref, tiled, c.describe() + " rows=" + rows);
          }
        }
      }
    }
  }

  @Test
  void w4a8ReferenceMatchesThePerElementFormulaInFp64() {
    Random r = new Random(SEED + 2);
    for (DType act : DType.values()) {
      for (int g : new int[] {-1, 32, 64, 128}) {
        for (boolean actOrder : new boolean[] {false, true}) {
          LinearLayerConfig c =
              LinearLayerConfig.of(
                  "test.w4a8", 256, 16, ScalarType.INT4, act, g, false, actOrder, QuantScheme.W4A8);
          QuantizedLinear l = RandomLayers.layer(c, r, true);
          int rows = 5;
          float[] x = RandomLayers.activations(rows, c.k(), act, r);
          java.util.Arrays.fill(x, 2 * c.k(), 3 * c.k(), 0f); // row 2 all zeros
          ScalarW4A8Kernel.Prepared p =
              (ScalarW4A8Kernel.Prepared) new ScalarW4A8Kernel().prepare(l);
          double[] v = p.applyUnrounded(x, rows, roundedBias(l));
          byte[] q = new byte[x.length];
          float[] xs = new float[rows];
          PerTokenInt8Quantizer.quantize(x, rows, c.k(), act, q, xs);
          assertEquals(act.round(1e-5f), xs[2], "all-zero row gets the minimum scale");
          for (int m = 0; m < rows; m++) {
            for (int n = 0; n < c.n(); n++) {
              double expected = 0;
              for (int k = 0; k < c.k(); k++) {
                double ws = act.round(l.scales()[l.group(k) * c.n() + n]);
                expected += (q[m * c.k() + k] * (double) xs[m]) * (l.value(k, n) * ws);
              }
              expected += act.round(l.bias()[n]);
              assertEquals(expected, v[m * c.n() + n], 1e-9 * Math.max(1, Math.abs(expected)));
            }
          }
          float[] out = new float[rows * c.n()];
          p.apply(x, rows, roundedBias(l), out);
          for (int i = 0; i < out.length; i++) {
            assertEquals(act.round(Float16.round(v[i])), out[i]);
          }
        }
      }
    }
  }

  @Test
  void perTokenQuantizationRoundsHalfToEvenWithTheRoundedScale() {
    // absmax 254 gives the exact scale 2: halves land on ties, which go to the even code.
    float[] x = {254f, 1f, 3f, 5f, -1f, -3f, 0f, -254f};
    byte[] q = new byte[x.length];
    float[] s = new float[1];
    PerTokenInt8Quantizer.quantize(x, 1, x.length, DType.F32, q, s);
    assertEquals(2.0f, s[0]);
    assertArrayEquals(new byte[] {127, 0, 2, 2, 0, -2, 0, -127}, q);
    // In bf16 the scale 127.635 / 127 = 1.005 rounds to 1.0078125 before the division.
    float[] y = {127.635f, 1f};
    PerTokenInt8Quantizer.quantize(y, 1, 2, DType.BF16, q, s);
    assertEquals(1.0078125f, s[0]);
    assertEquals(127, q[0]);
  }

  @Test
  void facadeGivesTheSameAnswerThroughSelection() {
    Random r = new Random(SEED + 3);
    LinearLayerConfig c = w4a16(256, 64, 128, true, false, DType.BF16);
    QuantizedLinear l = RandomLayers.layer(c, r, true);
    float[] x = RandomLayers.activations(3, c.k(), DType.BF16, r);
    try (Q4Linear q = Q4Linear.create(l, KernelOptions.defaults().withForced("TiledW4A16Kernel"))) {
      assertEquals("TiledW4A16Kernel", q.kernel());
      float[] ref = new float[3 * c.n()];
      new ScalarW4A16Kernel().prepare(l).apply(x, 3, roundedBias(l), ref);
      assertArrayEquals(ref, q.apply(x, 3));
      assertEquals(0, q.apply(new float[0], 0).length, "zero rows give zero outputs");
    }
  }

  private static float[] roundedBias(QuantizedLinear l) {
    if (l.bias() == null) {
      return null;
    }
    float[] b = l.bias().clone();
    for (int i = 0; i < b.length; i++) {
      b[i] = l.config().actType().round(b[i]);
    }
    return b;
  }

  private static double ulpOf(DType t, double v) {
    float f = (float) Math.abs(v);
    return switch (t) {
      case F16 -> Math.max(Math.ulp(f) * 8192, 0x1p-24);
      case BF16 -> Math.ulp(f) * 65536;
      case F32 -> Math.ulp(f);
    };
  }
}
