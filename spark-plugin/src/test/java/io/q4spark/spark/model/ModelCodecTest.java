package io.q4spark.spark.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.q4spark.kernels.DType;
import io.q4spark.kernels.QuantizedLinear;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class ModelCodecTest {
  private static final long SEED = 7;

  @Test
  void layersRoundTripThroughManySmallChunks() {
    Random r = new Random(SEED);
    List<ModelLayer> layers =
        List.of(
            new ModelLayer(TestModels.layer("a", 64, 32, 16, DType.F16, true, r), Activation.GELU),
            new ModelLayer(
                TestModels.layer("b", 32, 24, 8, DType.BF16, false, r), Activation.NONE));
    // 8: the smallest chunk (one long); 64: values fill chunks exactly; 100: they do not.
    for (int chunk : new int[] {8, 64, 100}) {
      roundTrip(layers, chunk);
    }
  }

  private static void roundTrip(List<ModelLayer> layers, int chunk) {
    ChunkedBytes bytes = ModelCodec.encode(layers, chunk);
    assertTrue(bytes.chunks().length > 10, "many chunks: " + bytes.chunks().length);
    for (byte[] c : bytes.chunks()) {
      assertTrue(c.length <= chunk && c.length > 0, "chunk of " + c.length + " bytes");
    }
    List<ModelLayer> back = ModelCodec.decode(bytes);
    assertEquals(layers.size(), back.size());
    for (int i = 0; i < layers.size(); i++) {
      QuantizedLinear a = layers.get(i).linear();
      QuantizedLinear b = back.get(i).linear();
      assertEquals(a.config(), b.config());
      assertEquals(layers.get(i).activation(), back.get(i).activation());
      assertTrue(a.weight().sameCodes(b.weight()));
      assertEquals(a.weight().layout(), b.weight().layout());
      assertArrayEquals(a.scales(), b.scales());
      assertArrayEquals(a.bias(), b.bias());
      assertEquals(a.zeros() == null, b.zeros() == null);
      if (a.zeros() != null) {
        assertTrue(a.zeros().sameCodes(b.zeros()));
      }
    }
  }

  @Test
  void chunksOfTheDefaultSizeHoldASmallModelInOne() {
    Random r = new Random(SEED);
    ChunkedBytes bytes =
        ModelCodec.encode(
            List.of(
                new ModelLayer(
                    TestModels.layer("a", 128, 64, 32, DType.F16, true, r), Activation.NONE)),
            ModelCodec.DEFAULT_CHUNK_BYTES);
    assertEquals(1, bytes.chunks().length);
    assertEquals(bytes.size(), bytes.chunks()[0].length);
  }

  @Test
  void activationsMatchTheirDefinitions() {
    float[] v = {-2f, -0.5f, 0f, 0.5f, 2f};
    float[] relu = v.clone();
    Activation.RELU.apply(relu, relu.length);
    assertArrayEquals(new float[] {0f, 0f, 0f, 0.5f, 2f}, relu);
    float[] silu = v.clone();
    Activation.SILU.apply(silu, silu.length);
    for (int i = 0; i < v.length; i++) {
      assertEquals(v[i] / (1 + Math.exp(-v[i])), silu[i], 1e-6);
    }
    // GELU(x) = x * Phi(x); Phi(2) = 0.9772498680518208, Phi(-0.5) = 0.3085375387259869.
    float[] gelu = v.clone();
    Activation.GELU.apply(gelu, gelu.length);
    assertEquals(2 * 0.9772498680518208, gelu[4], 1e-6);
    assertEquals(-0.5 * 0.3085375387259869, gelu[1], 1e-6);
    assertEquals(0f, gelu[2]);
  }
}
