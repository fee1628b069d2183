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
}
