package io.q4spark.kernels.onednn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.q4spark.kernels.Acceptance;
import io.q4spark.kernels.DType;
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
import org.bytedeco.dnnl.matmul;
import org.bytedeco.dnnl.memory;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/** oneDNN's W4A16 matmul against the scalar reference, on the shapes that break kernels. */
class OneDnnW4A16KernelTest {
  private static final long SEED = 41_2026_11_24L;
  private static final int[] ROWS = {1, 3, 17};

  /**
   * Allowed difference relative to the largest reference output: fp32 sums in another order (K <=
   * 512 terms, each rounding 2^-24 relative), as for the Vector API kernel.
   */
  private static final double TOLERANCE = 1e-5;

  private static LinearLayerConfig config(int k, int n, int g, boolean zp) {
    return LinearLayerConfig.of(
        "onednn",
        k,
        n,
        zp ? ScalarType.UINT4 : ScalarType.UINT4B8,
        DType.F32,
        g,
        zp,
        false,
        QuantScheme.W4A16);
  }

  /** Skips (with oneDNN's reason) where the kernel rejects the layer on this machine. */
  private static void assumeAccepted(LinearLayerConfig c) {
    Acceptance a = new OneDnnW4A16Kernel().canImplement(c);
    Assumptions.assumeTrue(a.accepted(), () -> c.describe() + ": " + a.reason());
  }

  private static void assertClose(QuantizedLinear l, int rows, int threads, Random r) {
    LinearLayerConfig c = l.config();
    float[] x = RandomLayers.activations(rows, c.k(), c.actType(), r);
    float[] ref = new float[rows * c.n()];
    float[] actual = new float[rows * c.n()];
    new ScalarW4A16Kernel().prepare(l).apply(x, rows, l.bias(), ref);
    try (PreparedLinear p =
        new OneDnnW4A16Kernel().prepare(l, KernelOptions.defaults().withThreads(threads))) {
      p.apply(x, rows, l.bias(), actual);
    }
    double max = 0;
    double err = 0;
    for (int i = 0; i < ref.length; i++) {
      max = Math.max(max, Math.abs(ref[i]));
      err = Math.max(err, Math.abs(ref[i] - actual[i]));
    }
    assertTrue(
        err <= TOLERANCE * max,
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
  void matchesTheReferenceOnEveryGroupSizeAndOddRowCounts() {
    Random r = new Random(SEED);
    System.out.println("seed " + SEED);
    for (int g : new int[] {32, 64, 128, -1}) {
      for (boolean zp : new boolean[] {false, true}) {
        // N = 72: not a multiple of 16, so the kernel's N blocking has a tail.
        LinearLayerConfig c = config(512, 72, g, zp);
        assumeAccepted(c);
        QuantizedLinear l = RandomLayers.layer(c, r, g == 64);
        for (int rows : ROWS) {
          assertClose(l, rows, 1 + rows % 2, r);
        }
      }
    }
  }

  @Test
  void rowsBeyondOneCallRunInChunks() {
    Random r = new Random(SEED + 1);
    LinearLayerConfig c = config(128, 40, 32, true);
    assumeAccepted(c);
    assertClose(RandomLayers.layer(c, r, true), OneDnnMatmul.MAX_ROWS + 9, 2, r);
  }

  @Test
  void allZeroAndAllFifteenCodes() {
    Random r = new Random(SEED + 2);
    LinearLayerConfig c = config(256, 24, 64, false);
    assumeAccepted(c);
    QuantizedLinear l = RandomLayers.layer(c, r, false);
    for (int fill : new int[] {0, 15}) {
      byte[] codes = new byte[c.k() * c.n()];
      java.util.Arrays.fill(codes, (byte) fill);
      QuantizedLinear filled =
          new QuantizedLinear(
              c,
              PackedInt4Matrix.fromCodes(Int4Layout.N_K8, c.k(), c.n(), codes),
              l.scales(),
              null,
              null,
              null);
      assertClose(filled, 3, 1, r);
    }
  }

  @Test
  void thePreparedLayerRunsTheImplementationSelectionSaw() {
    LinearLayerConfig c = config(256, 40, 128, false);
    assumeAccepted(c);
    try (OneDnnW4A16Kernel.Prepared p =
        (OneDnnW4A16Kernel.Prepared)
            new OneDnnW4A16Kernel().prepare(RandomLayers.layer(c, new Random(SEED + 3), false))) {
      String impl = p.implementation(1);
      System.out.println(
          "oneDNN " + OneDnn.version() + " on " + OneDnn.effectiveIsa() + ": " + impl);
      assertFalse(OneDnn.isReference(impl), impl);
      assertEquals(OneDnnMatmul.implementation(OneDnnW4A16Kernel.shape(c), 1), impl);
    }
  }

  @Test
  void rejectsWhatItDoesNotImplementWithTheReason() {
    OneDnnW4A16Kernel kernel = new OneDnnW4A16Kernel();
    assertEquals(
        "Activation dtype float16 not supported; supported: [float32]",
        kernel
            .canImplement(
                LinearLayerConfig.of(
                    "onednn",
                    256,
                    64,
                    ScalarType.UINT4B8,
                    DType.F16,
                    128,
                    false,
                    false,
                    QuantScheme.W4A16))
            .reason());
    assertEquals(
        "Activation reordering (g_idx) is not supported by OneDnnW4A16Kernel",
        kernel
            .canImplement(
                LinearLayerConfig.of(
                    "onednn",
                    256,
                    64,
                    ScalarType.UINT4,
                    DType.F32,
                    128,
                    true,
                    true,
                    QuantScheme.W4A16))
            .reason());
  }

  @Test
  void aClosedLayerSaysSo() {
    LinearLayerConfig c = config(64, 8, -1, false);
    assumeAccepted(c);
    PreparedLinear p = new OneDnnW4A16Kernel().prepare(RandomLayers.layer(c, new Random(1), false));
    p.close();
    IllegalStateException e =
        assertThrows(
            IllegalStateException.class, () -> p.apply(new float[64], 1, null, new float[8]));
    assertTrue(e.getMessage().contains("is closed"), e.getMessage());
  }

  @Test
  void u4LayoutIsTheFormulaAndInvertible() {
    Random r = new Random(SEED + 4);
    int k = 24;
    int n = 16;
    byte[] codes = new byte[k * n];
    for (int i = 0; i < codes.length; i++) {
      codes[i] = (byte) r.nextInt(16);
    }
    PackedInt4Matrix m = PackedInt4Matrix.fromCodes(Int4Layout.K8_N, k, n, codes);
    byte[] u4 = OneDnnU4Layout.pack(m);
    assertEquals(k * n / 2, u4.length);
    for (int kk = 0; kk < k; kk++) {
      for (int nn = 0; nn < n; nn++) {
        int i = kk * n + nn;
        assertEquals(codes[i], (u4[i / 2] >>> 4 * (nn % 2)) & 0xF, "code (" + kk + ", " + nn + ")");
      }
    }
    assertArrayEquals(codes, OneDnnU4Layout.unpack(u4, k, n).codes());
  }

  @Test
  void openMpWorkersSleepInsteadOfSpinningUnlessTheEnvironmentSaysOtherwise() {
    new OneDnnW4A16Kernel();
    String set = System.getenv(OpenMp.WAIT_POLICY);
    assertEquals(set != null ? set : "PASSIVE", OpenMp.nativeEnvironment(OpenMp.WAIT_POLICY));
    assertEquals(null, OpenMp.unavailableReason());
  }

  @Test
  void theU4LayoutIsTheOneOneDnnPicksOnAvx2() {
    new OneDnnW4A16Kernel();
    Assumptions.assumeTrue(
        OneDnn.effectiveIsa().equals("avx2"),
        "layout pinned on AVX2 only: " + OneDnn.effectiveIsa());
    int n = 72;
    OneDnnMatmul.Shape shape = OneDnnW4A16Kernel.shape(config(512, n, 128, true));
    try (matmul.primitive_desc pd = shape.primitiveDesc(1, memory.format_tag.any);
        memory.desc picked = pd.weights_desc()) {
      assertEquals(0, picked.get_inner_nblks());
      assertEquals(n, picked.get_strides().get(0));
      assertEquals(1, picked.get_strides().get(1));
    }
  }

  @Test
  void concurrentCallsOnOneLayerGiveTheSequentialResults() throws Exception {
    Random r = new Random(SEED + 5);
    LinearLayerConfig c = config(256, 40, 64, true);
    assumeAccepted(c);
    int[] rows = {1, 5, 17, 2};
    float[][] x = new float[rows.length][];
    float[][] expected = new float[rows.length][];
    try (PreparedLinear p =
        new OneDnnW4A16Kernel()
            .prepare(RandomLayers.layer(c, r, false), KernelOptions.defaults().withThreads(1))) {
      for (int i = 0; i < rows.length; i++) {
        x[i] = RandomLayers.activations(rows[i], c.k(), c.actType(), r);
        expected[i] = new float[rows[i] * c.n()];
        p.apply(x[i], rows[i], null, expected[i]);
      }
      java.util.concurrent.ExecutorService pool =
          java.util.concurrent.Executors.newFixedThreadPool(2);
      try {
        java.util.List<java.util.concurrent.Future<?>> done = new java.util.ArrayList<>();
        for (int t = 0; t < 2; t++) {
          done.add(
              pool.submit(
                  () -> {
                    for (int rep = 0; rep < 50; rep++) {
                      int i = rep % rows.length;
                      float[] out = new float[rows[i] * c.n()];
                      p.apply(x[i], rows[i], null, out);
                      assertArrayEquals(expected[i], out, "rows=" + rows[i]);
                    }
                    return null;
                  }));
        }
        for (java.util.concurrent.Future<?> f : done) {
          f.get();
        }
      } finally {
        pool.shutdown();
      }
    }
  }
}
