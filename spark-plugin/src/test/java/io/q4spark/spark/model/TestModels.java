package io.q4spark.spark.model;

import io.q4spark.kernels.DType;
import io.q4spark.kernels.LinearLayerConfig;
import io.q4spark.kernels.QuantScheme;
import io.q4spark.kernels.QuantizedLinear;
import io.q4spark.kernels.ScalarType;
import io.q4spark.kernels.format.CompressedTensorsCheckpoint;
import io.q4spark.kernels.format.GptqCheckpoint;
import io.q4spark.kernels.format.QuantizationArgs;
import io.q4spark.kernels.quantize.Int4WeightQuantizer;
import io.q4spark.kernels.repack.Int4Layout;
import io.q4spark.kernels.repack.PackedInt4Matrix;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;

/** Small quantized layers and checkpoints made from fixed seeds, for the Spark tests. */
public final class TestModels {
  private TestModels() {}

  /** A symmetric (uint4b8) W4A16 layer with a bias, weights ~ N(0, 1/K). */
  public static QuantizedLinear layer(
      String name, int k, int n, int group, DType dtype, boolean symmetric, Random r) {
    float[] w = new float[k * n];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) (r.nextGaussian() / Math.sqrt(k));
    }
    Int4WeightQuantizer.Result q = Int4WeightQuantizer.quantize(w, k, n, group, symmetric, dtype);
    float[] bias = new float[n];
    for (int i = 0; i < n; i++) {
      bias[i] = dtype.round((float) r.nextGaussian() * 0.1f);
    }
    LinearLayerConfig c =
        LinearLayerConfig.of(
            name,
            k,
            n,
            symmetric ? ScalarType.UINT4B8 : ScalarType.UINT4,
            dtype,
            group,
            !symmetric,
            false,
            QuantScheme.W4A16);
    return new QuantizedLinear(
        c,
        PackedInt4Matrix.fromCodes(Int4Layout.K_N8, k, n, q.codes()),
        q.scales(),
        symmetric ? null : PackedInt4Matrix.fromCodes(Int4Layout.K_N8, k / group, n, q.zeros()),
        null,
        bias);
  }

  /** Writes {@code layers} (symmetric, one group size) as a compressed-tensors checkpoint. */
  public static void writeCompressedTensors(
      Path dir, List<QuantizedLinear> layers, int group, DType dtype) {
    mkdirs(dir);
    CompressedTensorsCheckpoint.write(
        dir, new QuantizationArgs(QuantScheme.W4A16, true, group, false, dtype), layers, 1);
  }

  /** Writes {@code layers} (asymmetric, one group size) as a GPTQ v1 checkpoint. */
  public static void writeGptq(Path dir, List<QuantizedLinear> layers, int group, DType dtype) {
    mkdirs(dir);
    GptqCheckpoint.write(
        dir, new QuantizationArgs(QuantScheme.W4A16, false, group, false, dtype), false, layers);
  }

  private static void mkdirs(Path dir) {
    try {
      Files.createDirectories(dir);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
