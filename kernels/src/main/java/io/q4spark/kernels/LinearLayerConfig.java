package io.q4spark.kernels;

import java.util.Objects;

/**
 * What a kernel needs to know about one quantized linear layer before it sees any weights: vLLM's
 * {@code MPLinearLayerConfig} plus the layer's name (for messages) and the scheme.
 *
 * <p>Shapes are in vLLM's [in, out] order: {@code K} input features (the reduction), {@code N}
 * output features. The full shape is the whole layer; the partition shape is this worker's part of
 * it (equal to the full shape without tensor parallelism). {@code groupSize} is the number of
 * consecutive input features sharing one scale (and zero point); -1 means one group over all of the
 * partition's K.
 *
 * @param layer name of the layer, e.g. {@code model.layers.3.mlp.down_proj}, used in every message
 * @param fullK input features of the whole layer
 * @param fullN output features of the whole layer
 * @param k input features of this partition
 * @param n output features of this partition
 * @param weightType how stored weight codes map to integer values
 * @param actType activation dtype (fp16, bf16, or fp32 for q4spark's own kernels)
 * @param groupSize group size along K, or -1 for one group spanning K
 * @param zeroPoints whether per-group zero points are stored (asymmetric quantization)
 * @param hasGIdx whether an act-order {@code g_idx} maps each input feature to its group
 * @param scheme W4A16 or W4A8
 */
public record LinearLayerConfig(
    String layer,
    int fullK,
    int fullN,
    int k,
    int n,
    ScalarType weightType,
    DType actType,
    int groupSize,
    boolean zeroPoints,
    boolean hasGIdx,
    QuantScheme scheme) {

  public LinearLayerConfig {
    Objects.requireNonNull(layer, "layer");
    Objects.requireNonNull(weightType, "weightType");
    Objects.requireNonNull(actType, "actType");
    Objects.requireNonNull(scheme, "scheme");
    if (k <= 0 || n <= 0 || fullK < k || fullN < n) {
      throw new IllegalArgumentException(
          "layer "
              + layer
              + ": shapes must be positive with the partition inside the full layer, but were full"
              + " [K, N] = ["
              + fullK
              + ", "
              + fullN
              + "] and partition ["
              + k
              + ", "
              + n
              + "]");
    }
    if (groupSize == 0 || groupSize < -1) {
      throw new IllegalArgumentException(
          "layer " + layer + ": group size must be -1 or positive, but was " + groupSize);
    }
  }

  /** A layer without tensor parallelism: the partition is the whole layer. */
  public static LinearLayerConfig of(
      String layer,
      int k,
      int n,
      ScalarType weightType,
      DType actType,
      int groupSize,
      boolean zeroPoints,
      boolean hasGIdx,
      QuantScheme scheme) {
    return new LinearLayerConfig(
        layer, k, n, k, n, weightType, actType, groupSize, zeroPoints, hasGIdx, scheme);
  }

  /** The group size with -1 resolved to the partition's K, as the kernels use it. */
  public int effectiveGroupSize() {
    return groupSize == -1 ? k : groupSize;
  }

  /** Number of scale (and zero-point) rows: {@code ceil(K / G)}. */
  public int numGroups() {
    int g = effectiveGroupSize();
    return (k + g - 1) / g;
  }

  /**
   * The dtype of the values {@code apply} returns: the activation dtype. (W4A8's GEMM produces fp16
   * first, which is then cast to the activation dtype, as vLLM does.)
   */
  public DType outType() {
    return actType;
  }

  public LinearLayerConfig withLayer(String newName) {
    return new LinearLayerConfig(
        newName, fullK, fullN, k, n, weightType, actType, groupSize, zeroPoints, hasGIdx, scheme);
  }

  /** One line for logs and {@code q4spark doctor}. */
  public String describe() {
    return String.format(
        "%s %s K=%d N=%d weight=%s act=%s group=%d%s%s",
        layer,
        scheme,
        k,
        n,
        weightType,
        actType,
        groupSize,
        zeroPoints ? " zero-points" : "",
        hasGIdx ? " act-order" : "");
  }
}
