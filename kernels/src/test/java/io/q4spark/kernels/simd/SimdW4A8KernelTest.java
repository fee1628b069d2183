package io.q4spark.kernels.simd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.q4spark.kernels.DType;
import io.q4spark.kernels.KernelOptions;
import io.q4spark.kernels.LinearLayerConfig;
import io.q4spark.kernels.PreparedLinear;
import io.q4spark.kernels.QuantScheme;
import io.q4spark.kernels.QuantizedLinear;
import io.q4spark.kernels.RandomLayers;
import io.q4spark.kernels.ScalarType;
import io.q4spark.kernels.scalar.ScalarW4A8Kernel;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The Vector API W4A8 kernel against the W4A8 reference. */
class SimdW4A8KernelTest {
  private static final long SEED = 8_2026_11_24L;
  private static final int[] ROWS = {1, 2, 3, 7, 13, 17, 33, 118, 250};

  /**
   * Relative to the largest output: one fp16 step (the GEMM's output type) where the fp32 sums land
   * on the other side of a rounding boundary, plus the bf16 cast for bf16 models.
   */
  private static double tolerance(DType act) {
    return act == DType.BF16 ? 8e-3 : 1e-3;
  }

  @Test
  void matchesTheReferenceActivationStageBitForBitAndItsOutputs() {
    Random r = new Random(SEED);
    System.out.println("seed " + SEED);
    for (DType act : DType.values()) {
      for (int g : new int[] {-1, 32, 64, 128}) {
        for (boolean actOrder : new boolean[] {false, true}) {
          LinearLayerConfig c =
              LinearLayerConfig.of(
                  "simd.w4a8", 512, 40, ScalarType.INT4, act, g, false, actOrder, QuantScheme.W4A8);
          QuantizedLinear l = RandomLayers.layer(c, r, true);
          int rows = ROWS[r.nextInt(ROWS.length)];
          float[] x = RandomLayers.activations(rows, c.k(), act, r);
          float[] bias = l.bias().clone();
          for (int i = 0; i < bias.length; i++) {
            bias[i] = act.round(bias[i]);
          }
          ScalarW4A8Kernel.Prepared ref =
              (ScalarW4A8Kernel.Prepared) new ScalarW4A8Kernel().prepare(l);
          try (PreparedLinear p =
              new SimdW4A8Kernel().prepare(l, KernelOptions.defaults().withThreads(2))) {
            byte[] refCodes = new byte[x.length];
            byte[] codes = new byte[x.length];
            float[] refScales = new float[rows];
            float[] scales = new float[rows];
            ref.quantizeActivations(x, rows, refCodes, refScales);
            ((SimdW4A8Kernel.Prepared) p).quantizeActivations(x, rows, codes, scales);
            assertArrayEquals(refCodes, codes);
            assertArrayEquals(refScales, scales);
            float[] expected = new float[rows * c.n()];
            float[] actual = new float[rows * c.n()];
            ref.apply(x, rows, bias, expected);
            p.apply(x, rows, bias, actual);
            double max = 0;
            double err = 0;
            for (int i = 0; i < expected.length; i++) {
              max = Math.max(max, Math.abs(expected[i]));
              err = Math.max(err, Math.abs(expected[i] - actual[i]));
            }
            assertTrue(
                err <= tolerance(act) * max,
                c.describe() + " rows=" + rows + ": error " + err + " of max " + max);
          }
        }
      }
    }
  }

  /**
   * The integer GEMM's group sums equal the reference's exact ones, including the extremes that
   * come closest to overflowing its 16-bit lanes (codes -128 or 127 against weights 0 or 15) and
   * groups that are not a multiple of the flush periods.
   */
  @Test
  void groupSumsAreTheReferencesExactIntegers() {
    Random r = new Random(SEED + 1);
    System.out.println("seed " + (SEED + 1));
    for (int g : new int[] {-1, 8, 24, 32, 40, 128}) {
      for (boolean actOrder : new boolean[] {false, true}) {
        for (int fill : new int[] {-1, 0, 15}) {
          int k = g == 40 ? 520 : 512;
          // 40 columns: the one- and two-panel kernels; 272 (17 panels, 8 and 9 per thread): the
          // four-panel one-row kernel too, and its two-panel and one-panel tails
          int cols = g == 128 || g == -1 ? 272 : 40;
          LinearLayerConfig c =
              LinearLayerConfig.of(
                  "simd.w4a8.sums",
                  k,
                  cols,
                  ScalarType.INT4,
                  DType.F16,
                  g,
                  false,
                  actOrder,
                  QuantScheme.W4A8);
          QuantizedLinear l = RandomLayers.layer(c, r, false);
          if (fill >= 0) {
            byte[] codes = new byte[k * c.n()];
            java.util.Arrays.fill(codes, (byte) fill);
            l =
                new QuantizedLinear(
                    c,
                    io.q4spark.kernels.repack.PackedInt4Matrix.fromCodes(
                        io.q4spark.kernels.repack.Int4Layout.K_N8, k, c.n(), codes),
                    l.scales(),
                    null,
                    l.gIdx(),
                    null);
          }
          for (int rows : new int[] {1, 3, 4, 7, 9}) {
            byte[] qx = new byte[rows * k];
            for (int i = 0; i < qx.length; i++) {
              // Mostly the extremes, so the 16-bit partial sums reach their bounds.
              int choice = r.nextInt(4);
              qx[i] = (byte) (choice == 0 ? -128 : choice == 1 ? 127 : r.nextInt(256) - 128);
            }
            // Every activation at one end: against weights 0 (fill 0) the one-row kernels' unsigned
            // lanes and the four-row kernels' centred lanes reach their bounds exactly (four rows
            // of -128 against code 0: 32 products of -8 * 128 = -32768 per flush).
            if (rows == 1 || rows == 4) {
              java.util.Arrays.fill(qx, (byte) -128);
            } else if (rows == 9) {
              java.util.Arrays.fill(qx, (byte) 127);
            }
            ScalarW4A8Kernel.Prepared ref =
                (ScalarW4A8Kernel.Prepared) new ScalarW4A8Kernel().prepare(l);
            long[] expected = ref.groupSums(qx, rows);
            SimdW4A8Kernel.Prepared p =
                (SimdW4A8Kernel.Prepared)
                    new SimdW4A8Kernel().prepare(l, KernelOptions.defaults().withThreads(2));
            int[] actual = p.groupSums(qx, rows);
            int groups = c.numGroups();
            int np = actual.length / (rows * groups);
            for (int m = 0; m < rows; m++) {
              for (int gg = 0; gg < groups; gg++) {
                for (int n = 0; n < c.n(); n++) {
                  long e = expected[(m * groups + gg) * c.n() + n];
                  long a = actual[(m * groups + gg) * np + n];
                  if (e != a) {
                    throw new AssertionError(
                        c.describe()
                            + " fill="
                            + fill
                            + " rows="
                            + rows
                            + ": isum(row "
                            + m
                            + ", group "
                            + gg
                            + ", column "
                            + n
                            + ") = "
                            + a
                            + ", expected "
                            + e);
                  }
                }
              }
            }
          }
        }
      }
    }
  }
}
