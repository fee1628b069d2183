package io.q4spark.kernels.cuda;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.q4spark.kernels.Acceptance;
import io.q4spark.kernels.DType;
import io.q4spark.kernels.LinearKernel;
import io.q4spark.kernels.LinearLayerConfig;
import io.q4spark.kernels.PreparedLinear;
import io.q4spark.kernels.QuantScheme;
import io.q4spark.kernels.QuantizedLinear;
import io.q4spark.kernels.RandomLayers;
import io.q4spark.kernels.ScalarType;
import io.q4spark.kernels.scalar.ScalarW4A16Kernel;
import io.q4spark.kernels.scalar.ScalarW4A8Kernel;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The CUDA kernels against the scalar references on random layers: every group size, zero points,
 * act-order, fp16/bf16 (and fp32 for W4A8), N and K that need padding, and row counts that reach
 * every tile and the split-K path. Runs only where a CUDA device is usable; elsewhere it is skipped
 * with the probe's reason ({@code -Dq4spark.requireCuda=true} turns the skip into a failure).
 */
class CudaKernelsTest {
  private static final long SEED = 4_2026_11_24L;

  /**
   * Rows that reach both small-M kernels (one and two B tiles, with split-K), the medium tile and
   * the large tile.
   */
  private static final int[] ROWS = {1, 5, 9, 16, 17, 64, 65, 130};

  @BeforeAll
  static void requireDevice() {
    CudaProbe probe = CudaKernelSupport.probe();
    if (Boolean.getBoolean("q4spark.requireCuda")) {
      assertTrue(probe.available(), probe.reason());
    }
    Assumptions.assumeTrue(probe.available(), "no CUDA device: " + probe.reason());
  }

  /**
   * Allowed difference relative to the largest reference output: the GPU adds the same exact
   * products in another order, so outputs differ by about one unit in the last place of the output
   * dtype (fp16 2^-11, bf16 2^-8), twice that for headroom.
   */
  private static double tolerance(DType out) {
    return out == DType.BF16 ? 1.6e-2 : 2e-3;
  }

  @Test
  void w4a16MatchesTheReference() {
    Random r = new Random(SEED);
    int[][] shapes = {{512, 256}, {1024, 72}, {208, 136}};
    for (DType act : new DType[] {DType.F16, DType.BF16}) {
      for (int g : new int[] {32, 64, 128, 256, -1}) {
        for (boolean zp : new boolean[] {false, true}) {
          for (int[] shape : shapes) {
            int k = shape[0];
            int n = shape[1];
            if (g > 0 && k % g != 0) {
              continue;
            }
            LinearLayerConfig c =
                LinearLayerConfig.of(
                    "cuda",
                    k,
                    n,
                    zp ? ScalarType.UINT4 : ScalarType.UINT4B8,
                    act,
                    g,
                    zp,
                    g == 128,
                    QuantScheme.W4A16);
            compare(new CudaW4A16Kernel(), new ScalarW4A16Kernel(), c, r);
          }
        }
      }
    }
  }

  /**
   * The small-M kernels on layers whose chunks are shared by few blocks (1, 3 and 7), so that
   * blocks cover whole strips and several strips, and stages hold fewer chunks than the ring's
   * consumer warps; then the same calls on the per-warp kernel that GPUs before sm_90 run (where
   * the device is older, every pass runs that kernel).
   */
  @Test
  void smallRowCountsMatchTheReferenceOnEitherSmallKernel() {
    Random r = new Random(SEED + 2);
    int[] rows = {1, 3, 8, 9, 16};
    for (LinearLayerConfig c : smallLayers("cuda-small")) {
      try {
        System.setProperty(CudaW4A16Kernel.SMALL_KERNEL_PROPERTY, "ring");
        for (int blocks : new int[] {1, 3, 7}) {
          CudaW4A16Kernel.Prepared.ringBlocksOverride = blocks;
          compareRows(new CudaW4A16Kernel(), new ScalarW4A16Kernel(), c, r, rows);
        }
        CudaW4A16Kernel.Prepared.ringBlocksOverride = 0;
        System.setProperty(CudaW4A16Kernel.SMALL_KERNEL_PROPERTY, "warps");
        // 17-64 rows: the per-warp kernel with four and eight B tiles (small32, small64)
        compareRows(
            new CudaW4A16Kernel(),
            new ScalarW4A16Kernel(),
            c,
            r,
            1,
            3,
            8,
            9,
            16,
            17,
            24,
            32,
            33,
            50,
            64);
      } finally {
        CudaW4A16Kernel.Prepared.ringBlocksOverride = 0;
        System.clearProperty(CudaW4A16Kernel.SMALL_KERNEL_PROPERTY);
      }
    }
  }

  /**
   * The wgmma kernels (sm_90a) at every block height (64, 128 and 256 rows) on row counts that fill
   * a block, leave it partly empty and spill into a second one: on the device's block count
   * (stream-K, tiles shared by several blocks), as if one block fit the GPU (a tile per block, in
   * waves) and on three blocks (stream-K with whole tiles and shared ones; then whole waves of a
   * tile per block before stream-K over the rest: {@code wgmmaHybrid}); K = 208 and 96 end inside a
   * 64-k stage.
   */
  @Test
  void manyRowCountsMatchTheReferenceOnTheWgmmaKernels() {
    CudaDevice device = CudaDevice.shared(CudaOptions.defaults());
    Assumptions.assumeTrue(
        device.hasWgmma(), "the wgmma kernels need sm_90a, the device is " + device.arch());
    Random r = new Random(SEED + 3);
    int[] rows = {17, 64, 65, 129, 300};
    for (LinearLayerConfig c : smallLayers("cuda-wgmma")) {
      QuantizedLinear l = RandomLayers.layer(c, r, c.groupSize() == 64);
      try (PreparedLinear gpu = new CudaW4A16Kernel().prepare(l);
          PreparedLinear ref = new ScalarW4A16Kernel().prepare(l)) {
        System.setProperty(CudaW4A16Kernel.MANY_ROWS_KERNEL_PROPERTY, "wgmma");
        for (int tileRows : new int[] {64, 128, 256}) {
          System.setProperty(CudaW4A16Kernel.WGMMA_ROWS_PROPERTY, Integer.toString(tileRows));
          // the device's own count (here mostly one k tile per block), then few blocks that
          // each take whole tiles and share others
          for (int blocks : new int[] {0, 1, 3}) {
            CudaW4A16Kernel.Prepared.wgmmaBlocksOverride = blocks;
            compareOnce(
                new CudaW4A16Kernel(),
                c,
                l,
                gpu,
                ref,
                r,
                rows,
                "wgmma, blocks of " + tileRows + " rows, " + blocks + " blocks");
          }
          // whole waves of 3 blocks a tile each, then stream-K over the rest
          System.setProperty(CudaW4A16Kernel.WGMMA_HYBRID_PROPERTY, "true");
          CudaW4A16Kernel.Prepared.wgmmaBlocksOverride = 3;
          compareOnce(
              new CudaW4A16Kernel(),
              c,
              l,
              gpu,
              ref,
              r,
              rows,
              "wgmma, blocks of " + tileRows + " rows, 3 blocks, hybrid");
          System.clearProperty(CudaW4A16Kernel.WGMMA_HYBRID_PROPERTY);
        }
      } finally {
        CudaW4A16Kernel.Prepared.wgmmaBlocksOverride = 0;
        System.clearProperty(CudaW4A16Kernel.WGMMA_HYBRID_PROPERTY);
        System.clearProperty(CudaW4A16Kernel.MANY_ROWS_KERNEL_PROPERTY);
        System.clearProperty(CudaW4A16Kernel.WGMMA_ROWS_PROPERTY);
      }
    }
  }

  /**
   * Small layers for the small-M and wgmma tests: fp16 and bf16; G = 32, 64 (with a bias, as
   * RandomLayers makes them), 128 (act-order: rows gathered on the device before the chunk-major
   * copy) and full K; zero points except at G = 128; K = 208 and 96 make the last 64-k chunk reach
   * past K (96 with G = 32: into a padding group).
   */
  private static List<LinearLayerConfig> smallLayers(String name) {
    int[][] shapes = {{512, 256}, {208, 136}, {1024, 72}, {96, 200}};
    List<LinearLayerConfig> layers = new ArrayList<>();
    for (DType act : new DType[] {DType.F16, DType.BF16}) {
      for (int g : new int[] {32, 64, 128, -1}) {
        for (int[] shape : shapes) {
          if (g > 0 && shape[0] % g != 0) {
            continue;
          }
          boolean zp = g != 128;
          layers.add(
              LinearLayerConfig.of(
                  name,
                  shape[0],
                  shape[1],
                  zp ? ScalarType.UINT4 : ScalarType.UINT4B8,
                  act,
                  g,
                  zp,
                  g == 128,
                  QuantScheme.W4A16));
        }
      }
    }
    return layers;
  }

  @Test
  void w4a8MatchesTheReference() {
    Random r = new Random(SEED + 1);
    int[][] shapes = {{512, 256}, {1024, 72}, {384, 1536}};
    for (DType act : DType.values()) {
      for (int g : new int[] {32, 64, 128, 256, -1}) {
        for (int[] shape : shapes) {
          int k = shape[0];
          int n = shape[1];
          if (g > 0 && k % g != 0) {
            continue;
          }
          LinearLayerConfig c =
              LinearLayerConfig.of(
                  "cuda", k, n, ScalarType.INT4, act, g, false, g == 64, QuantScheme.W4A8);
          compare(new CudaW4A8Kernel(), new ScalarW4A8Kernel(), c, r);
        }
      }
    }
  }

  @Test
  void callsOfManyRowsRunInOverlappedChunksWithTheSameResults() {
    Random r = new Random(SEED + 3);
    int rows = 2 * CudaPreparedLinear.OVERLAP_CHUNK_ROWS + 333;
    LinearLayerConfig w4a16 =
        LinearLayerConfig.of(
            "cuda", 256, 128, ScalarType.UINT4, DType.F16, 128, true, true, QuantScheme.W4A16);
    compareRows(new CudaW4A16Kernel(), new ScalarW4A16Kernel(), w4a16, r, rows);
    LinearLayerConfig w4a8 =
        LinearLayerConfig.of(
            "cuda", 256, 128, ScalarType.INT4, DType.BF16, 64, false, false, QuantScheme.W4A8);
    compareRows(new CudaW4A8Kernel(), new ScalarW4A8Kernel(), w4a8, r, rows);
  }

  @Test
  void offHeapRowsGiveTheSameResultAsArrays() {
    Random r = new Random(SEED + 2);
    LinearLayerConfig c =
        LinearLayerConfig.of(
            "cuda", 512, 256, ScalarType.UINT4B8, DType.F16, 128, false, false, QuantScheme.W4A16);
    QuantizedLinear l = RandomLayers.layer(c, r, true);
    int rows = 33;
    float[] x = RandomLayers.activations(rows, c.k(), c.actType(), r);
    float[] expected = new float[rows * c.n()];
    try (PreparedLinear p = new CudaW4A16Kernel().prepare(l);
        Arena arena = Arena.ofConfined()) {
      p.apply(x, rows, l.bias(), expected);
      MemorySegment in = arena.allocateFrom(JAVA_FLOAT, x);
      MemorySegment out = arena.allocate(JAVA_FLOAT, (long) rows * c.n());
      ((CudaPreparedLinear) p).apply(in, rows, l.bias(), out);
      assertArrayEquals(expected, out.toArray(JAVA_FLOAT));
      // What the executor's bytesToDevice / bytesFromDevice metrics count per call.
      assertArrayEquals(new long[] {4L * rows * 512, 4L * rows * 256}, p.deviceTraffic(rows));
    }
  }

  /**
   * Layers borrow the device's lanes: once one call has grown a lane's scratch (here the 16-bit
   * dequantized weights of the many-rows path and the rows in and out), calls on other layers of
   * the same shape allocate no device memory, where each layer used to keep a workspace of its own.
   */
  @Test
  void layersShareTheDevicesScratchInsteadOfKeepingTheirOwn() {
    Random r = new Random(SEED + 4);
    LinearLayerConfig c =
        LinearLayerConfig.of(
            "cuda", 1024, 512, ScalarType.UINT4B8, DType.F16, 128, false, false, QuantScheme.W4A16);
    int rows = 256;
    assertTrue(CudaDequantGemm.takes(rows), "the many-rows path takes the calls");
    List<QuantizedLinear> layers = new ArrayList<>();
    List<PreparedLinear> gpu = new ArrayList<>();
    try {
      for (int i = 0; i < 4; i++) {
        layers.add(RandomLayers.layer(c, r, false));
        gpu.add(new CudaW4A16Kernel().prepare(layers.get(i)));
      }
      CudaDevice device = ((CudaPreparedLinear) gpu.get(0)).device;
      long afterFirstCall = -1;
      for (int i = 0; i < layers.size(); i++) {
        PreparedLinear ref = new ScalarW4A16Kernel().prepare(layers.get(i));
        compareOnce(
            new CudaW4A16Kernel(), c, layers.get(i), gpu.get(i), ref, r, new int[] {rows}, "lanes");
        if (i == 0) {
          afterFirstCall = device.liveBytes();
        } else {
          assertEquals(
              afterFirstCall,
              device.liveBytes(),
              "device bytes after layer "
                  + i
                  + "'s first call (layer 0's: "
                  + afterFirstCall
                  + ")");
        }
      }
    } finally {
      gpu.forEach(PreparedLinear::close);
    }
  }

  private static void compare(
      LinearKernel kernel, LinearKernel reference, LinearLayerConfig c, Random r) {
    compareRows(kernel, reference, c, r, ROWS);
  }

  private static void compareRows(
      LinearKernel kernel,
      LinearKernel reference,
      LinearLayerConfig c,
      Random r,
      int... rowCounts) {
    Acceptance a = kernel.canImplement(c);
    assertTrue(a.accepted(), c.describe() + ": " + a.reason());
    QuantizedLinear l = RandomLayers.layer(c, r, c.groupSize() == 64);
    try (PreparedLinear gpu = kernel.prepare(l);
        PreparedLinear ref = reference.prepare(l)) {
      // W4A16: every row count through the mma kernels, then again where the many-rows path
      // (dequantize + cuBLAS) takes over: with its default schedule, then in slabs of 64 columns
      // on two streams, and of 128 columns on one stream.
      // On sm_90a also through the wgmma kernels, alone and as the default many-rows path.
      boolean twoPaths = gpu instanceof CudaW4A16Kernel.Prepared;
      CudaDequantGemm.Schedule[] schedules = {
        null,
        null,
        null,
        new CudaDequantGemm.Schedule(64, true),
        new CudaDequantGemm.Schedule(128, false)
      };
      String[] names = {"mma tiles", "wgmma", "default paths", "dequantize + cuBLAS", ""};
      try {
        for (int pass = 0; pass < (twoPaths ? schedules.length : 1); pass++) {
          if (twoPaths) {
            CudaW4A16Kernel.Prepared p = (CudaW4A16Kernel.Prepared) gpu;
            p.allowWgmma(pass == 1 || pass == 2);
            p.allowDequantGemm(pass >= 2);
            CudaDequantGemm.override(schedules[pass]);
          }
          String paths = pass <= 3 ? names[pass] : names[3] + ", " + schedules[pass];
          compareOnce(kernel, c, l, gpu, ref, r, rowCounts, paths);
        }
      } finally {
        CudaDequantGemm.override(null);
      }
    }
  }

  private static void compareOnce(
      LinearKernel kernel,
      LinearLayerConfig c,
      QuantizedLinear l,
      PreparedLinear gpu,
      PreparedLinear ref,
      Random r,
      int[] rowCounts,
      String paths) {
    for (int rows : rowCounts) {
      float[] x = RandomLayers.activations(rows, c.k(), c.actType(), r);
      float[] expected = new float[rows * c.n()];
      float[] actual = new float[rows * c.n()];
      ref.apply(x, rows, l.bias(), expected);
      gpu.apply(x, rows, l.bias(), actual);
      double max = 0;
      double err = 0;
      int worst = 0;
      for (int i = 0; i < expected.length; i++) {
        max = Math.max(max, Math.abs(expected[i]));
        double e = Math.abs(expected[i] - actual[i]);
        if (!(e <= err)) {
          err = e;
          worst = i;
        }
      }
      assertTrue(
          err <= tolerance(c.outType()) * max,
          kernel.name()
              + " ("
              + paths
              + ") "
              + c.describe()
              + " rows="
              + rows
              + ": error "
              + err
              + " of max "
              + max
              + " at row "
              + worst / c.n()
              + " column "
              + worst % c.n()
              + " (expected "
              + expected[worst]
              + ", found "
              + actual[worst]
              + ")");
    }
  }
}
