package io.q4spark.kernels;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * {@link Q4Linear#apply(MemorySegment, int, float[])} (rows in native memory, as Arrow holds them)
 * gives exactly what the array entry gives, for every kernel that can run here: the values arrive
 * unrounded, so each kernel's own rounding to the activation dtype must match the facade's. On the
 * GPU host this covers the CUDA kernels' in-place path, including a call long enough to run in
 * overlapped chunks.
 */
class NativeMemoryApplyTest {
  private static final long SEED = 2026_12_02L;

  /** Past two of the CUDA path's 1024-row overlap chunks, with a tail. */
  private static final int[] ROWS = {1, 37, 2 * 1024 + 5};

  @Test
  void everyKernelReadsNativeRowsAsItReadsArrays() {
    Random r = new Random(SEED);
    List<String> ran = new ArrayList<>();
    for (QuantScheme scheme : QuantScheme.values()) {
      for (DType act : DType.values()) {
        LinearLayerConfig c =
            LinearLayerConfig.of(
                "native." + scheme + "." + act,
                256,
                64,
                scheme == QuantScheme.W4A8 ? ScalarType.INT4 : ScalarType.UINT4B8,
                act,
                64,
                false,
                false,
                scheme);
        QuantizedLinear layer = RandomLayers.layer(c, r, true);
        for (String name : KernelCatalog.names()) {
          LinearKernel kernel;
          try {
            kernel = KernelCatalog.load(name);
          } catch (KernelCatalog.KernelUnavailableException e) {
            continue;
          }
          if (!kernel.canImplement(c).accepted()) {
            continue;
          }
          try (Q4Linear l = Q4Linear.create(layer, KernelOptions.defaults().withForced(name));
              Arena arena = Arena.ofConfined()) {
            for (int rows : ROWS) {
              float[] x = new float[rows * c.k()];
              for (int i = 0; i < x.length; i++) {
                x[i] = (float) r.nextGaussian(); // not rounded to the activation dtype
              }
              float[] fromArray = l.apply(x, rows);
              float[] fromNative = new float[rows * c.n()];
              l.apply(arena.allocateFrom(JAVA_FLOAT, x), rows, fromNative);
              assertArrayEquals(fromArray, fromNative, name + " " + c.describe() + " rows " + rows);
            }
          }
          ran.add(name + "/" + act);
        }
      }
    }
    System.out.println("native-memory entry checked for " + ran);
    assertTrue(ran.contains("ScalarW4A16Kernel/float16"), ran.toString());
    assertTrue(ran.contains("SimdW4A8Kernel/bfloat16"), ran.toString());
  }

  @Test
  void tooLittleNativeMemoryNamesTheLayerAndTheSizes() {
    LinearLayerConfig c =
        LinearLayerConfig.of(
            "native.small",
            64,
            16,
            ScalarType.UINT4B8,
            DType.F32,
            32,
            false,
            false,
            QuantScheme.W4A16);
    QuantizedLinear layer = RandomLayers.layer(c, new Random(SEED), false);
    try (Q4Linear l = Q4Linear.create(layer, KernelOptions.defaults());
        Arena arena = Arena.ofConfined()) {
      IllegalArgumentException e =
          assertThrows(
              IllegalArgumentException.class,
              () -> l.apply(arena.allocate(JAVA_FLOAT, 64), 2, new float[32]));
      assertEquals(
          "layer native.small: the activations' memory holds 256 bytes, expected at least 4 * rows"
              + " * K = 512",
          e.getMessage());
    }
  }
}
