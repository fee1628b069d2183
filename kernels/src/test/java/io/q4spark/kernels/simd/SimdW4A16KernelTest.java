package io.q4spark.kernels.simd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.q4spark.kernels.BFloat16;
import io.q4spark.kernels.DType;
import io.q4spark.kernels.Float16;
import io.q4spark.kernels.KernelOptions;
import io.q4spark.kernels.LinearLayerConfig;
import io.q4spark.kernels.PreparedLinear;
import io.q4spark.kernels.QuantScheme;
import io.q4spark.kernels.QuantizedLinear;
import io.q4spark.kernels.RandomLayers;
import io.q4spark.kernels.ScalarType;
import io.q4spark.kernels.repack.Int4Layout;
import io.q4spark.kernels.repack.PackedInt4Matrix;
import io.q4spark.kernels.scalar.ScalarW4A16Kernel;
import java.util.Random;
import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

/** The Vector API W4A16 kernel against the scalar reference on the shapes that break kernels. */
class SimdW4A16KernelTest {
  private static final long SEED = 31_2026_11_24L;
  // 4 and 5 take the 4-row streaming kernel (5 with a one-row tail); 250 crosses the 240-row chunk
  // of the blocked path.
  private static final int[] ROWS = {1, 2, 3, 4, 5, 7, 13, 17, 33, 118, 152, 250};

  /**
   * Allowed difference, relative to the largest reference output: one rounding of the output dtype
   * (the outputs are rounded after sums taken in another order) plus fp32 reordering (K <= 1024
   * terms, each error 2^-24 relative).
   */
  private static double tolerance(DType t) {
    return switch (t) {
      case F16 -> 1e-3;
      case BF16 -> 8e-3;
      case F32 -> 1e-5;
    };
  }

  private static void assertClose(QuantizedLinear l, int rows, int threads, Random r) {
    LinearLayerConfig c = l.config();
    float[] x = RandomLayers.activations(rows, c.k(), c.actType(), r);
    float[] ref = new float[rows * c.n()];
    float[] simd = new float[rows * c.n()];
    new ScalarW4A16Kernel().prepare(l).apply(x, rows, null, ref);
    try (PreparedLinear p =
        new SimdW4A16Kernel().prepare(l, KernelOptions.defaults().withThreads(threads))) {
      p.apply(x, rows, null, simd);
    }
    double max = 0;
    double err = 0;
    for (int i = 0; i < ref.length; i++) {
      max = Math.max(max, Math.abs(ref[i]));
      err = Math.max(err, Math.abs(ref[i] - simd[i]));
    }
    assertTrue(
        err <= tolerance(c.actType()) * max,
        c.describe()
            + " rows="
            + rows
            + " threads="
            + threads
            + ": error "
            + err
            + " of max "
            + max);
  }

  @Test
  void matchesTheReferenceOnEveryGroupSizeDtypeAndRowCount() {
    Random r = new Random(SEED);
    System.out.println("seed " + SEED + ", species " + SimdW4A16Kernel.species());
    for (DType act : DType.values()) {
      for (int g : new int[] {-1, 32, 64, 128, 256}) {
        for (boolean zp : new boolean[] {false, true}) {
          LinearLayerConfig c =
              LinearLayerConfig.of(
                  "simd",
                  512,
                  72,
                  zp ? ScalarType.UINT4 : ScalarType.UINT4B8,
                  act,
                  g,
                  zp,
                  false,
                  QuantScheme.W4A16);
          QuantizedLinear l = RandomLayers.layer(c, r, false);
          for (int rows : ROWS) {
            assertClose(l, rows, 1 + rows % 2, r);
          }
        }
      }
    }
  }

  @Test
  void actOrderIncludingUnevenGroupsAndOddShapes() {
    Random r = new Random(SEED + 1);
    for (DType act : DType.values()) {
      // GPTQ act-order: a permutation of k / G, every group of size G.
      LinearLayerConfig c =
          LinearLayerConfig.of(
              "simd.actorder", 384, 40, ScalarType.UINT4, act, 128, true, true, QuantScheme.W4A16);
      assertClose(RandomLayers.layer(c, r, false), 5, 2, r);
      // Uneven groups: any map from k to groups, sizes not multiples of 8.
      QuantizedLinear l = RandomLayers.layer(c, r, false);
      int[] g = new int[c.k()];
      for (int k = 0; k < g.length; k++) {
        g[k] = r.nextInt(c.numGroups());
      }
      assertClose(new QuantizedLinear(c, l.weight(), l.scales(), l.zeros(), g, null), 9, 2, r);
    }
    // K = 8, N = 8: smaller than one vector in both directions on AVX-512.
    LinearLayerConfig tiny =
        LinearLayerConfig.of(
            "simd.tiny", 8, 8, ScalarType.UINT4B8, DType.F32, -1, false, false, QuantScheme.W4A16);
    assertClose(RandomLayers.layer(tiny, r, false), 3, 2, r);
  }

  @Test
  void fewFp32RowsOnManyPanelsTakeFourPanelsAtATime() {
    // 13 panels on AVX-512 (25 on AVX2): each thread's range has runs of four panels and a tail of
    // one to three; rows 1-3 and the row left over after a four-row block (5) take the four-panel
    // loop, with and without act-order and zero points.
    Random r = new Random(SEED + 7);
    for (int g : new int[] {-1, 64, 128}) {
      for (boolean zp : new boolean[] {false, true}) {
        for (boolean actOrder : new boolean[] {false, true}) {
          if (actOrder && g == -1) {
            continue;
          }
          LinearLayerConfig c =
              LinearLayerConfig.of(
                  "simd.fourpanels",
                  384,
                  200,
                  zp ? ScalarType.UINT4 : ScalarType.UINT4B8,
                  DType.F32,
                  g,
                  zp,
                  actOrder,
                  QuantScheme.W4A16);
          QuantizedLinear l = RandomLayers.layer(c, r, false);
          for (int rows : new int[] {1, 2, 3, 5}) {
            for (int threads : new int[] {1, 2, 3}) {
              assertClose(l, rows, threads, r);
            }
          }
        }
      }
    }
  }

  @Test
  void narrowLayersSplitRowsAcrossThreads() {
    // One or two column pairs and more threads than pairs: the rows are split between threads.
    Random r = new Random(SEED + 6);
    for (DType act : DType.values()) {
      for (int n : new int[] {8, 24, 40}) {
        LinearLayerConfig c =
            LinearLayerConfig.of(
                "simd.narrow", 256, n, ScalarType.UINT4, act, 64, true, false, QuantScheme.W4A16);
        QuantizedLinear l = RandomLayers.layer(c, r, false);
        for (int rows : new int[] {6, 17, 118, 250}) {
          assertClose(l, rows, 5, r);
        }
      }
    }
  }

  @Test
  void allZeroAndAllFifteenCodes() {
    Random r = new Random(SEED + 2);
    for (int fill : new int[] {0, 15}) {
      LinearLayerConfig c =
          LinearLayerConfig.of(
              "simd.fill",
              256,
              32,
              ScalarType.UINT4B8,
              DType.BF16,
              64,
              false,
              false,
              QuantScheme.W4A16);
      QuantizedLinear l = RandomLayers.layer(c, r, false);
      byte[] codes = new byte[c.k() * c.n()];
      java.util.Arrays.fill(codes, (byte) fill);
      QuantizedLinear filled =
          new QuantizedLinear(
              c,
              PackedInt4Matrix.fromCodes(Int4Layout.K8_N, c.k(), c.n(), codes),
              l.scales(),
              null,
              null,
              null);
      assertClose(filled, 4, 2, r);
    }
  }

  @Test
  void fp16ScalesThatWouldOverflowAreRefusedWithTheLayerName() {
    LinearLayerConfig c =
        LinearLayerConfig.of(
            "simd.big", 64, 8, ScalarType.UINT4B8, DType.F16, 64, false, false, QuantScheme.W4A16);
    QuantizedLinear l = RandomLayers.layer(c, new Random(SEED + 5), false);
    float[] scales = l.scales().clone();
    scales[3] = 8192f;
    QuantizedLinear big = new QuantizedLinear(c, l.weight(), scales, null, null, null);
    IllegalArgumentException e =
        org.junit.jupiter.api.Assertions.assertThrows(
            IllegalArgumentException.class, () -> new SimdW4A16Kernel().prepare(big));
    assertEquals(
        "layer simd.big: scale 8192.0 of group 0, output 3 makes dequantized float16 weights overflow"
            + " (15 * scale >= 65520)",
        e.getMessage());
  }

  @Test
  void panelsAreInvertible() {
    Random r = new Random(SEED + 3);
    for (boolean actOrder : new boolean[] {false, true}) {
      LinearLayerConfig c =
          LinearLayerConfig.of(
              "simd.panels",
              256,
              24,
              ScalarType.UINT4B8,
              DType.F16,
              64,
              false,
              actOrder,
              QuantScheme.W4A16);
      QuantizedLinear l = RandomLayers.layer(c, r, false);
      SimdPanels p = SimdPanels.of(l, 8);
      assertArrayEquals(l.weight().codes(), p.toMatrix(Int4Layout.K_N8).codes());
      assertEquals(0, p.nPadded % 8);
    }
  }

  @Test
  void vectorRoundingMatchesTheScalarConversions() {
    Random r = new Random(SEED + 4);
    int lanes = FloatVector.SPECIES_PREFERRED.length();
    float[] v = new float[lanes];
    float[] w = new float[lanes];
    float[] out = new float[lanes];
    for (int i = 0; i < 200_000; i++) {
      for (int j = 0; j < lanes; j++) {
        // bf16: any value, subnormals included.
        v[j] = (r.nextInt(31) - 15) * (float) Math.scalb(r.nextFloat(), r.nextInt(300) - 150);
        // fp16: what the kernel rounds, a 4-bit difference times an fp16 scale, from fp16's
        // smallest subnormal (2^-24) up, below fp16's overflow (the layer refuses larger ones).
        float s = Float16.round((float) Math.scalb(0.5 + r.nextDouble(), r.nextInt(36) - 24));
        float w0 = (r.nextInt(31) - 15) * s;
        w[j] = Math.abs(w0) < 65520f ? w0 : 0f;
      }
      SimdW4A16Layer.roundBits(
              FloatVector.fromArray(FloatVector.SPECIES_PREFERRED, v, 0), SimdW4A16Layer.BF16_DROP)
          .intoArray(out, 0);
      for (int j = 0; j < lanes; j++) {
        assertEquals(BFloat16.round(v[j]), out[j], "bf16 of " + v[j]);
      }
      SimdW4A16Layer.roundBits(
              FloatVector.fromArray(FloatVector.SPECIES_PREFERRED, w, 0), SimdW4A16Layer.F16_DROP)
          .intoArray(out, 0);
      for (int j = 0; j < lanes; j++) {
        assertEquals(Float16.round(w[j]), out[j], "fp16 of " + w[j]);
      }
    }
  }

  @Test
  void fp16LayersWithSubnormalWeightsMatchTheReference() {
    // Scales down to 2^-22: many weights are fp16 subnormals, which the streaming loop rounds on
    // the bit pattern like the others (exact for these products, see roundBits). One and two rows.
    Random r = new Random(SEED + 8);
    for (boolean zp : new boolean[] {false, true}) {
      LinearLayerConfig c =
          LinearLayerConfig.of(
              "simd.tinyscales",
              256,
              64,
              zp ? ScalarType.UINT4 : ScalarType.UINT4B8,
              DType.F16,
              64,
              zp,
              false,
              QuantScheme.W4A16);
      QuantizedLinear l = RandomLayers.layer(c, r, false);
      float[] tiny = l.scales().clone();
      for (int i = 0; i < tiny.length; i++) {
        tiny[i] = Float16.round((float) Math.scalb(0.5 + r.nextDouble(), -14 - r.nextInt(9)));
      }
      QuantizedLinear t = new QuantizedLinear(c, l.weight(), tiny, l.zeros(), l.gIdx(), null);
      for (int rows : new int[] {1, 2}) {
        assertClose(t, rows, 2, r);
      }
    }
  }
}
