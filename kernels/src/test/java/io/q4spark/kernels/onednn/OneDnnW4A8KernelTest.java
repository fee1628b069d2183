package io.q4spark.kernels.onednn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.q4spark.kernels.Acceptance;
import io.q4spark.kernels.DType;
import io.q4spark.kernels.KernelOptions;
import io.q4spark.kernels.LinearLayerConfig;
import io.q4spark.kernels.QuantScheme;
import io.q4spark.kernels.QuantizedLinear;
import io.q4spark.kernels.RandomLayers;
import io.q4spark.kernels.ScalarType;
import io.q4spark.kernels.scalar.ScalarW4A8Kernel;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * oneDNN's s8 x s4 matmul: selection names oneDNN's implementation when it is a reference one, and
 * the results match the W4A8 reference whatever implementation runs (small layers, so the reference
 * implementation of oneDNN is fast enough to test).
 */
class OneDnnW4A8KernelTest {
  private static final long SEED = 48_2026_11_24L;
  private static final int[] ROWS = {1, 3, 17};

  /** Crosses the 512-row chunk, whose rows are quantized on their own; one configuration only. */
  private static final int[] ROWS_WITH_CHUNKS = {1, 3, 17, OneDnnMatmul.MAX_ROWS + 9};

  /** The rejection oneDNN's own words produce. */
  private static final Pattern REFERENCE_REASON =
      Pattern.compile(
          "oneDNN \\d+\\.\\d+\\.\\d+ picked (ref\\S*) for s8 x s4 at M=1 on this CPU \\(effective"
              + " ISA \\S+\\); an optimized s8 x s4 kernel with grouped weight scales needs AVX-512"
              + " with AMX or VNNI in this oneDNN build \\(seen: brg_matmul on Sapphire Rapids,"
              + " ref_int8 on AVX2\\)"
              + " \\(OneDnnW4A8Kernel, s8 \\[1, 4096\\] .*\\)");

  /**
   * Relative to the largest output: one fp16 step (the GEMM's output type) where the sums land on
   * the other side of a rounding boundary, plus the bf16 cast for bf16 models.
   */
  private static double tolerance(DType act) {
    return act == DType.BF16 ? 8e-3 : 1e-3;
  }

  private static LinearLayerConfig config(int k, int n, DType act, int g) {
    return LinearLayerConfig.of(
        "model.layers.0.mlp.down_proj",
        k,
        n,
        ScalarType.INT4,
        act,
        g,
        false,
        false,
        QuantScheme.W4A8);
  }

  @Test
  void amxTakesCallsFromFewerRowsThanOtherBrgemmKernels() {
    assertEquals(4, OneDnnW4A8Kernel.fasterFromRows("brg_matmul:avx10_1_512_amx"));
    assertEquals(32, OneDnnW4A8Kernel.fasterFromRows("brg_matmul:avx512_core_vnni"));
  }

  @Test
  void aReferenceImplementationIsRejectedInOneDnnsOwnWords() {
    LinearLayerConfig c = config(4096, 4096, DType.F16, 128);
    Acceptance a = new OneDnnW4A8Kernel().canImplement(c);
    System.out.println("OneDnnW4A8Kernel on " + OneDnn.effectiveIsa() + ": " + a);
    Assumptions.assumeFalse(
        a.accepted(), "oneDNN has a fast s8 x s4 path on this CPU (" + OneDnn.effectiveIsa() + ")");
    Matcher m = REFERENCE_REASON.matcher(a.reason());
    assertTrue(m.matches(), a.reason());
    // The name in the reason is what a prepared layer of that shape would run.
    String quoted = m.group(1);
    assertTrue(OneDnn.isReference(quoted), quoted);
    assertEquals(quoted, OneDnnMatmul.implementation(OneDnnW4A8Kernel.shape(c), 1));
  }

  @Test
  void unsupportedLayersAreRejectedBeforeAskingOneDnn() {
    LinearLayerConfig actOrder =
        LinearLayerConfig.of(
            "onednn.w4a8", 256, 64, ScalarType.INT4, DType.F16, 128, false, true, QuantScheme.W4A8);
    assertEquals(
        "Activation reordering (g_idx) is not supported by OneDnnW4A8Kernel",
        new OneDnnW4A8Kernel().canImplement(actOrder).reason());
  }

  @Test
  void matchesTheReferenceActivationStageBitForBitAndItsOutputs() {
    Random r = new Random(SEED);
    System.out.println("seed " + SEED);
    for (DType act : DType.values()) {
      for (int g : new int[] {32, 64, -1}) {
        LinearLayerConfig c = config(256, 40, act, g);
        QuantizedLinear l = RandomLayers.layer(c, r, true);
        float[] bias = l.bias().clone();
        for (int i = 0; i < bias.length; i++) {
          bias[i] = act.round(bias[i]);
        }
        ScalarW4A8Kernel.Prepared ref =
            (ScalarW4A8Kernel.Prepared) new ScalarW4A8Kernel().prepare(l);
        // Prepared directly: selection would reject the layer on a CPU without a fast path, but
        // oneDNN's reference implementation still computes it, and must compute it right.
        try (OneDnnW4A8Kernel.Prepared p =
            (OneDnnW4A8Kernel.Prepared)
                new OneDnnW4A8Kernel().prepare(l, KernelOptions.defaults().withThreads(2))) {
          for (int rows : act == DType.F16 && g == 32 ? ROWS_WITH_CHUNKS : ROWS) {
            float[] x = RandomLayers.activations(rows, c.k(), act, r);
            byte[] refCodes = new byte[x.length];
            byte[] codes = new byte[x.length];
            float[] refScales = new float[rows];
            float[] scales = new float[rows];
            ref.quantizeActivations(x, rows, refCodes, refScales);
            p.quantizeActivations(x, rows, codes, scales);
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
          assertFalse(p.implementation(1).isEmpty());
        }
      }
    }
  }
}
