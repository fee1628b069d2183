package io.q4spark.spark.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.q4spark.kernels.DType;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link ModelCheckpoint#inspect} (a layer at a time) agrees with {@link ModelCheckpoint#read}. */
class ModelCheckpointTest {
  @TempDir Path tmp;

  @Test
  void inspectDescribesWhatReadReads() {
    Random r = new Random(5);
    TestModels.writeCompressedTensors(
        tmp,
        List.of(
            TestModels.layer("a", 32, 48, 16, DType.F16, true, r),
            TestModels.layer("b", 48, 24, 16, DType.F16, true, r)),
        16,
        DType.F16);
    Map<String, String> options = Map.of("layers", "a,b", "activation", "gelu");
    List<ModelLayer> layers = ModelCheckpoint.read("m", tmp, options);
    ModelCheckpoint.Summary s = ModelCheckpoint.inspect("m", tmp, options);
    assertEquals(layers.stream().map(ModelLayer::describe).toList(), s.described());
    assertEquals(32, s.k());
    assertEquals(24, s.n());
  }

  @Test
  void inspectRejectsLayersThatDoNotChain() {
    Random r = new Random(6);
    TestModels.writeCompressedTensors(
        tmp,
        List.of(
            TestModels.layer("a", 32, 48, 16, DType.F16, true, r),
            TestModels.layer("b", 32, 24, 16, DType.F16, true, r)),
        16,
        DType.F16);
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> ModelCheckpoint.inspect("m", tmp, Map.of("layers", "a,b")));
    assertEquals(
        "model 'm': layer a gives N=48 outputs but the next layer b takes K=32 inputs; consecutive"
            + " layers must chain (the layers option chooses and orders them)",
        e.getMessage());
  }
}
