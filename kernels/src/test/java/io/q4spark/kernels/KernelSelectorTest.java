package io.q4spark.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

class KernelSelectorTest {
  /** The GPU kernels, disabled where a test pins the CPU kernels\' order. */
  private static final String CUDA = "CudaW4A16Kernel,CudaW4A8Kernel";

  private static LinearLayerConfig config(
      int k, int n, ScalarType t, DType act, int g, boolean zp, boolean gIdx, QuantScheme s) {
    return LinearLayerConfig.of("model.layers.0.mlp.down_proj", k, n, t, act, g, zp, gIdx, s);
  }

  @Test
  void picksTheFirstKernelThatAcceptsASeedShapedLayer() {
    KernelSelection s =
        KernelSelector.select(
            config(4096, 4096, ScalarType.UINT4B8, DType.F16, 128, false, false, QuantScheme.W4A16),
            KernelOptions.defaults().withDisabled(CUDA, "test"));
    assertEquals("SimdW4A16Kernel", s.chosen().name());
    assertEquals(2, s.outcomes().size());
    assertEquals("CudaW4A16Kernel disabled by test", s.rejections().get(0).reason());
    assertTrue(s.describe().startsWith("layer model.layers.0.mlp.down_proj W4A16 K=4096 N=4096"));
  }

  @Test
  void theTritonMirrorRejectsWithTheSeedsReasons() {
    LinearKernel tiled = KernelCatalog.load("TiledW4A16Kernel");
    assertEquals(
        "Quant type int4 not supported; supported: [uint4b8, uint4]",
        tiled
            .canImplement(
                config(256, 256, ScalarType.INT4, DType.F16, 128, false, false, QuantScheme.W4A16))
            .reason());
    assertEquals(
        "Activation dtype float32 not supported; supported: [float16, bfloat16]",
        tiled
            .canImplement(
                config(
                    256, 256, ScalarType.UINT4B8, DType.F32, 128, false, false, QuantScheme.W4A16))
            .reason());
    assertEquals(
        "Output features (260) must be divisible by 8 (8 int4 values packed per int32)",
        tiled
            .canImplement(
                config(
                    256, 260, ScalarType.UINT4B8, DType.F16, 128, false, false, QuantScheme.W4A16))
            .reason());
    assertEquals(
        "Activation reordering (g_idx) is not supported by TiledW4A16Kernel",
        tiled
            .canImplement(
                config(
                    256, 256, ScalarType.UINT4B8, DType.F16, 128, false, true, QuantScheme.W4A16))
            .reason());
    assertEquals(
        "Group size 16 not supported; supported: [-1, 32, 64, 128, 256] or full K (256)",
        tiled
            .canImplement(
                config(
                    256, 256, ScalarType.UINT4B8, DType.F16, 16, false, false, QuantScheme.W4A16))
            .reason());
    assertEquals(
        "Input features 320 not divisible by group size 128",
        tiled
            .canImplement(
                config(
                    320, 256, ScalarType.UINT4B8, DType.F16, 128, false, false, QuantScheme.W4A16))
            .reason());
    assertTrue(
        tiled
            .canImplement(
                config(384, 256, ScalarType.UINT4, DType.BF16, 384, true, false, QuantScheme.W4A16))
            .accepted(),
        "a group equal to the full K is accepted");
  }

  @Test
  void actOrderFallsBackWithTheReasonRecorded() {
    KernelSelection s =
        KernelSelector.select(
            config(256, 256, ScalarType.UINT4B8, DType.BF16, 32, false, true, QuantScheme.W4A16),
            KernelOptions.defaults().withDisabled(CUDA + ",SimdW4A16Kernel", "test"));
    assertEquals("ScalarW4A16Kernel", s.chosen().name());
    assertEquals("SimdW4A16Kernel disabled by test", s.rejections().get(1).reason());
    assertEquals(
        "TiledW4A16Kernel cannot implement due to: Activation reordering (g_idx) is not supported"
            + " by TiledW4A16Kernel",
        s.rejections().get(2).reason());
  }

  @Test
  void w4a8LayersGoToTheW4A8Kernel() {
    KernelSelection s =
        KernelSelector.select(
            config(256, 256, ScalarType.INT4, DType.F16, 128, false, false, QuantScheme.W4A8),
            KernelOptions.defaults());
    // The CUDA kernel comes first where there is a GPU, else the Vector API kernel (oneDNN's W4A8
    // kernel only takes calls of many rows from it, where it has a fast s8 x s4 path).
    String expected =
        s.outcomes().stream().anyMatch(o -> o.accepted() && o.kernel().equals("CudaW4A8Kernel"))
            ? "CudaW4A8Kernel"
            : "SimdW4A8Kernel";
    assertEquals(expected, s.chosen().name());
    assertEquals(
        "CudaW4A16Kernel cannot implement due to: CudaW4A16Kernel implements W4A16"
            + " (floating-point activations), the layer is W4A8",
        s.rejections().get(0).reason());
    assertEquals(
        "SimdW4A16Kernel cannot implement due to: SimdW4A16Kernel implements W4A16"
            + " (floating-point activations), the layer is W4A8",
        s.rejections().get(1).reason());
  }

  @Test
  void denyListIsHonouredAndNamesItsSource() {
    KernelOptions o =
        KernelOptions.defaults()
            .withDisabled(
                " CudaW4A16Kernel, SimdW4A16Kernel, TiledW4A16Kernel ,",
                KernelOptions.DISABLED_KERNELS_ENV);
    KernelSelection s =
        KernelSelector.select(
            config(256, 256, ScalarType.UINT4B8, DType.F16, 128, false, false, QuantScheme.W4A16),
            o);
    assertEquals("ScalarW4A16Kernel", s.chosen().name());
    assertEquals(
        "SimdW4A16Kernel disabled by Q4SPARK_DISABLED_KERNELS", s.rejections().get(1).reason());
    assertEquals(
        "TiledW4A16Kernel disabled by Q4SPARK_DISABLED_KERNELS", s.rejections().get(2).reason());
  }

  @Test
  void forcedKernelIsUsedOrFailsWithItsReason() {
    LinearLayerConfig c =
        config(256, 256, ScalarType.UINT4B8, DType.F16, 128, false, false, QuantScheme.W4A16);
    KernelSelection s =
        KernelSelector.select(c, KernelOptions.defaults().withForced("ScalarW4A16Kernel"));
    assertEquals("ScalarW4A16Kernel", s.chosen().name());
    assertEquals("skipped: ScalarW4A16Kernel is forced", s.rejections().get(0).reason());

    NoKernelException e =
        assertThrows(
            NoKernelException.class,
            () ->
                KernelSelector.select(c, KernelOptions.defaults().withForced("ScalarW4A8Kernel")));
    assertEquals(
        "The forced kernel ScalarW4A8Kernel cannot implement layer model.layers.0.mlp.down_proj W4A16"
            + " K=256 N=256 weight=uint4b8 act=float16 group=128. Reason: ScalarW4A8Kernel cannot"
            + " implement due to: ScalarW4A8Kernel implements W4A8 (int8 per-token activations), the"
            + " layer is W4A16",
        e.getMessage());
  }

  @Test
  void noKernelListsEveryReason() {
    LinearLayerConfig c =
        config(256, 252, ScalarType.UINT4B8, DType.F16, 128, false, false, QuantScheme.W4A16);
    NoKernelException e =
        assertThrows(
            NoKernelException.class, () -> KernelSelector.select(c, KernelOptions.defaults()));
    assertEquals(
        "Failed to find a kernel that can implement the W4A16 linear layer"
            + " model.layers.0.mlp.down_proj W4A16 K=256 N=252 weight=uint4b8 act=float16 group=128."
            + " Reasons: \n"
            + "CudaW4A16Kernel cannot implement due to: Output features (252) must be divisible by 8"
            + " (8 int4 values packed per int32)\n"
            + "SimdW4A16Kernel cannot implement due to: Output features (252) must be divisible by 8"
            + " (8 int4 values packed per int32)\n"
            + "TiledW4A16Kernel cannot implement due to: Output features (252) must be divisible by 8"
            + " (8 int4 values packed per int32)\n"
            + "OneDnnW4A16Kernel cannot implement due to: Activation dtype float16 not supported;"
            + " supported: [float32]\n"
            + "ScalarW4A16Kernel cannot implement due to: Output features (252) must be divisible by 8"
            + " (8 int4 values packed per int32)\n"
            + "CudaW4A8Kernel cannot implement due to: CudaW4A8Kernel implements W4A8 (int8"
            + " per-token activations), the layer is W4A16\n"
            + "SimdW4A8Kernel cannot implement due to: SimdW4A8Kernel implements W4A8 (int8"
            + " per-token activations), the layer is W4A16\n"
            + "OneDnnW4A8Kernel cannot implement due to: OneDnnW4A8Kernel implements W4A8 (int8"
            + " per-token activations), the layer is W4A16\n"
            + "ScalarW4A8Kernel cannot implement due to: ScalarW4A8Kernel implements W4A8 (int8"
            + " per-token activations), the layer is W4A16",
        e.getMessage());
    assertEquals(9, e.outcomes().size());
  }

  @Test
  void unknownNamesInOptionsAreErrorsNotSilentNoOps() {
    LinearLayerConfig c =
        config(256, 256, ScalarType.UINT4B8, DType.F16, 128, false, false, QuantScheme.W4A16);
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                KernelSelector.select(
                    c,
                    new KernelOptions(Map.of("TritonW4A16", "option kernels.disabled"), null, 1)));
    assertEquals(
        "unknown kernel 'TritonW4A16' in the deny-list (from option kernels.disabled): expected"
            + " names from [CudaW4A16Kernel, SimdW4A16Kernel, TiledW4A16Kernel,"
            + " OneDnnW4A16Kernel, ScalarW4A16Kernel, CudaW4A8Kernel, SimdW4A8Kernel,"
            + " OneDnnW4A8Kernel, ScalarW4A8Kernel]",
        e.getMessage());
    assertFalse(KernelCatalog.names().contains("TritonW4A16"));
  }

  @Test
  void kSizesNotDivisibleByTheGroupAreRejectedEverywhere() {
    LinearLayerConfig c =
        config(200, 256, ScalarType.UINT4B8, DType.F16, 64, false, false, QuantScheme.W4A16);
    NoKernelException e =
        assertThrows(
            NoKernelException.class, () -> KernelSelector.select(c, KernelOptions.defaults()));
    assertTrue(
        e.getMessage()
            .contains(
                "ScalarW4A16Kernel cannot implement due to: Input features 200 not divisible by group size 64"),
        e.getMessage());
  }

  @Test
  void oneDnnTakesFp32LayersTheJavaKernelsLeaveAndNamesItsReferenceImplementation() {
    KernelOptions noJava =
        KernelOptions.defaults().withDisabled(CUDA + ",SimdW4A16Kernel,SimdW4A8Kernel", "test");
    KernelSelection w4a16 =
        KernelSelector.select(
            config(512, 72, ScalarType.UINT4, DType.F32, 64, true, false, QuantScheme.W4A16),
            noJava);
    Assumptions.assumeTrue(
        w4a16.chosen().name().equals("OneDnnW4A16Kernel"),
        () -> "oneDNN is not available here: " + w4a16.describe());
    // Tiled rejects fp32, so oneDNN comes before the reference.
    assertEquals(
        "Activation dtype float32 not supported; supported: [float16, bfloat16]",
        w4a16.outcomes().get(2).reason().replace("TiledW4A16Kernel cannot implement due to: ", ""));

    KernelSelection w4a8 =
        KernelSelector.select(
            config(4096, 4096, ScalarType.INT4, DType.F16, 128, false, false, QuantScheme.W4A8),
            noJava);
    KernelSelection.Outcome onednn =
        w4a8.outcomes().stream()
            .filter(o -> o.kernel().equals("OneDnnW4A8Kernel"))
            .findFirst()
            .orElseThrow();
    if (!onednn.accepted()) {
      assertTrue(
          onednn.reason().startsWith("OneDnnW4A8Kernel cannot implement due to: oneDNN "),
          onednn.reason());
      assertTrue(onednn.reason().contains(" picked ref"), onednn.reason());
      assertEquals("ScalarW4A8Kernel", w4a8.chosen().name());
    }
  }

  @Test
  void callsOfManyRowsGoToOneDnnWhereItHasAWideBrgemmKernel() {
    KernelOptions cpu = KernelOptions.defaults().withDisabled(CUDA, "test");
    LinearLayerConfig c =
        config(512, 96, ScalarType.INT4, DType.F32, 64, false, false, QuantScheme.W4A8);
    KernelSelection s = KernelSelector.select(c, cpu);
    assertEquals("SimdW4A8Kernel", s.chosen().name());
    Assumptions.assumeTrue(
        s.manyRows() != null,
        () -> "oneDNN has no AVX-512 / AMX brgemm kernel for this layer here: " + s.describe());
    assertEquals("OneDnnW4A8Kernel", s.manyRows().name());
    assertTrue(s.manyRowsFrom() > 1, s.describe());
    assertTrue(
        s.describe()
            .contains(
                "OneDnnW4A8Kernel: chosen for calls of "
                    + s.manyRowsFrom()
                    + " rows or more (measured faster than SimdW4A8Kernel there)"),
        s.describe());
    // Q4Linear sends each call to its kernel: the same results as the kernel forced alone.
    java.util.Random r = new java.util.Random(3);
    QuantizedLinear layer = RandomLayers.layer(c, r, true);
    try (Q4Linear both = Q4Linear.create(layer, cpu);
        Q4Linear simd = Q4Linear.create(layer, cpu.withForced("SimdW4A8Kernel"));
        Q4Linear onednn = Q4Linear.create(layer, cpu.withForced("OneDnnW4A8Kernel"))) {
      assertEquals(
          "SimdW4A8Kernel, OneDnnW4A8Kernel from " + s.manyRowsFrom() + " rows", both.kernel());
      for (int rows : new int[] {1, s.manyRowsFrom() - 1, s.manyRowsFrom(), 3 * s.manyRowsFrom()}) {
        float[] x = RandomLayers.activations(rows, c.k(), c.actType(), r);
        Q4Linear expected = rows < s.manyRowsFrom() ? simd : onednn;
        org.junit.jupiter.api.Assertions.assertArrayEquals(
            expected.apply(x, rows), both.apply(x, rows), "rows " + rows);
      }
    }
  }

  @Test
  void aForcedKernelTakesEveryCall() {
    KernelSelection s =
        KernelSelector.select(
            config(512, 96, ScalarType.INT4, DType.F32, 64, false, false, QuantScheme.W4A8),
            KernelOptions.defaults().withForced("SimdW4A8Kernel"));
    assertEquals(null, s.manyRows());
    assertEquals("SimdW4A8Kernel", s.kernels());
  }
}
