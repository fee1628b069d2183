package io.q4spark.kernels.format;

import java.util.Arrays;
import java.util.function.UnaryOperator;

/**
 * The tensors of one layer inside a {@link TensorSource}, read with the checks every format needs:
 * present, of the right dtype, of the shape the config implies. Every failure is a {@link
 * CheckpointException} naming the layer, the tensor, the source, the expected and the found value.
 */
final class LayerTensors {
  private final TensorSource source;
  private final String layer;
  private final UnaryOperator<String> fullName;

  /**
   * @param fullName maps a format's short name ({@code qweight}) to the tensor's name in the source
   *     ({@code model.layers.0.mlp.down_proj.qweight})
   */
  LayerTensors(TensorSource source, String layer, UnaryOperator<String> fullName) {
    this.source = source;
    this.layer = layer;
    this.fullName = fullName;
  }

  /**
   * Tensors named {@code prefix + "." + shortName}, or {@code shortName} when the prefix is empty.
   */
  static LayerTensors withPrefix(TensorSource source, String prefix) {
    return new LayerTensors(
        source,
        prefix.isEmpty() ? "(unnamed)" : prefix,
        n -> prefix.isEmpty() ? n : prefix + "." + n);
  }

  String layer() {
    return layer;
  }

  boolean has(String shortName) {
    return source.contains(fullName.apply(shortName));
  }

  TensorView get(String shortName) {
    String name = fullName.apply(shortName);
    if (!source.contains(name)) {
      throw error("tensor '" + name + "' is missing from " + source.describe());
    }
    return source.tensor(name);
  }

  /** A required tensor is absent; {@code why} says what requires it. */
  CheckpointException missing(String shortName, String why) {
    return error(
        why
            + ", but tensor '"
            + fullName.apply(shortName)
            + "' is missing from "
            + source.describe());
  }

  /**
   * The tensor, checked to be one of {@code dtypes} and, unless {@code expected} is null, of shape
   * {@code expected}.
   *
   * @param formula the shape in symbols, such as {@code [N, K/G]}
   * @param dims the sizes the symbols stand for, such as {@code " for K=256, N=24, G=64"}, or ""
   */
  TensorView get(
      String shortName, long[] expected, String formula, String dims, SafetensorsDType... dtypes) {
    TensorView t = get(shortName);
    if (Arrays.stream(dtypes).noneMatch(d -> d == t.dtype())) {
      throw error(
          shortName
              + " has dtype "
              + t.dtype()
              + ", expected "
              + (dtypes.length == 1 ? dtypes[0] : Arrays.toString(dtypes))
              + " (in "
              + t.source()
              + ")");
    }
    if (expected != null && !Arrays.equals(expected, t.shape())) {
      throw error(
          shortName
              + " has shape "
              + Arrays.toString(t.shape())
              + ", expected "
              + formula
              + " = "
              + Arrays.toString(expected)
              + dims
              + " (in "
              + t.source()
              + ")");
    }
    return t;
  }

  /** Checks the rank of a tensor whose sizes define the layer's shape. */
  void requireRank(String shortName, TensorView t, int rank, String formula) {
    if (t.rank() != rank) {
      throw error(
          shortName
              + " has shape "
              + Arrays.toString(t.shape())
              + " (rank "
              + t.rank()
              + "), expected rank "
              + rank
              + ": "
              + formula
              + " (in "
              + t.source()
              + ")");
    }
  }

  int[] ints(String shortName, long[] expected, String formula, String dims) {
    return get(shortName, expected, formula, dims, SafetensorsDType.I32).toIntArray();
  }

  float[] floats(String shortName, long[] expected, String formula, String dims) {
    return get(
            shortName,
            expected,
            formula,
            dims,
            SafetensorsDType.F16,
            SafetensorsDType.BF16,
            SafetensorsDType.F32)
        .toFloatArray();
  }

  /**
   * The act-order map, or null when it is the default {@code k / G} (then a kernel without
   * act-order support computes the same result).
   */
  static int[] nonTrivialGIdx(int[] gIdx, int groupSize) {
    for (int k = 0; k < gIdx.length; k++) {
      if (gIdx[k] != k / groupSize) {
        return gIdx;
      }
    }
    return null;
  }

  /** The layer's act-order map, or the default {@code k / G} when it has none. */
  static int[] gIdxOrDefault(io.q4spark.kernels.QuantizedLinear l) {
    int[] g = new int[l.config().k()];
    for (int k = 0; k < g.length; k++) {
      g[k] = l.group(k);
    }
    return g;
  }

  CheckpointException error(String message) {
    return new CheckpointException("layer " + layer + ": " + message);
  }

  /** Wraps a validation failure of the assembled layer so it carries the checkpoint's context. */
  CheckpointException invalid(IllegalArgumentException e) {
    return new CheckpointException(e.getMessage() + " (in " + source.describe() + ")", e);
  }
}
