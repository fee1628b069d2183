package io.q4spark.kernels;

import io.q4spark.kernels.repack.Int4Layout;
import io.q4spark.kernels.repack.PackedInt4Matrix;

/**
 * One quantized linear layer as read from a checkpoint, before any kernel repacks it: the weight
 * codes in whatever layout the checkpoint stored them, the scales as [numGroups, N] (group-major,
 * the kernels' order), zero points, act-order {@code g_idx} and bias. The constructor checks
 * everything a kernel relies on, once, and names the layer in every message.
 *
 * <p>Value of weight (k, n), in exact integers before the scale:
 *
 * <pre>
 *   g(k)    = gIdx == null ? k / G : gIdx[k]
 *   z(g, n) = zeroPoints ? zeros.code(g, n) : weightType.bias()     (8 for uint4b8 and int4 codes)
 *   w(k, n) = (weight.code(k, n) - z(g(k), n)) * scales[g(k) * N + n]
 * </pre>
 *
 * For {@code int4} (W4A8) weights the stored codes are {@code value + 8}, as vLLM's XPU kernel
 * packs them, so the zero is 8 there too; see {@link #codeZero}.
 *
 * @param config the layer configuration
 * @param weight [K, N] codes in a checkpoint or kernel layout
 * @param scales [numGroups, N] row-major, values of the checkpoint's scale dtype
 * @param zeros [numGroups, N] zero codes (an N-packed layout), or null when {@code !zeroPoints}
 * @param gIdx group of each input feature ([K]), or null without act-order
 * @param bias [N], or null
 */
public record QuantizedLinear(
    LinearLayerConfig config,
    PackedInt4Matrix weight,
    float[] scales,
    PackedInt4Matrix zeros,
    int[] gIdx,
    float[] bias) {

  public QuantizedLinear {
    String layer = "layer " + config.layer();
    int k = config.k();
    int n = config.n();
    int groups = config.numGroups();
    if (weight.rows() != k || weight.cols() != n) {
      throw new IllegalArgumentException(
          layer
              + ": weight holds K="
              + weight.rows()
              + ", N="
              + weight.cols()
              + ", expected K="
              + k
              + ", N="
              + n);
    }
    if (scales.length != (long) groups * n) {
      throw new IllegalArgumentException(
          layer
              + ": scales hold "
              + scales.length
              + " values, expected [K/G, N] = ["
              + groups
              + ", "
              + n
              + "] = "
              + (long) groups * n
              + " for K="
              + k
              + ", G="
              + config.effectiveGroupSize());
    }
    for (int i = 0; i < scales.length; i++) {
      if (!Float.isFinite(scales[i])) {
        throw new IllegalArgumentException(
            layer
                + ": scale of group "
                + i / n
                + ", output "
                + i % n
                + " is "
                + scales[i]
                + ", expected a finite number");
      }
    }
    if (config.zeroPoints() != (zeros != null)) {
      throw new IllegalArgumentException(
          layer
              + (config.zeroPoints()
                  ? ": the config is asymmetric (weight type "
                      + config.weightType()
                      + " with zero points) but no zero points were given"
                  : ": zero points were given but the config is symmetric (weight type "
                      + config.weightType()
                      + ")"));
    }
    if (zeros != null && (zeros.rows() != groups || zeros.cols() != n)) {
      throw new IllegalArgumentException(
          layer
              + ": zero points hold ["
              + zeros.rows()
              + ", "
              + zeros.cols()
              + "] codes, expected [K/G, N] = ["
              + groups
              + ", "
              + n
              + "]");
    }
    if (zeros != null && zeros.layout().packsK()) {
      throw new IllegalArgumentException(
          layer + ": zero points must be packed along N, but the layout is " + zeros.layout());
    }
    if (config.hasGIdx() != (gIdx != null)) {
      throw new IllegalArgumentException(
          layer
              + (config.hasGIdx()
                  ? ": the config uses act-order but no g_idx was given"
                  : ": a g_idx was given but the config has no act-order"));
    }
    if (gIdx != null) {
      if (gIdx.length != k) {
        throw new IllegalArgumentException(
            layer + ": g_idx holds " + gIdx.length + " entries, expected K=" + k);
      }
      for (int i = 0; i < k; i++) {
        if (gIdx[i] < 0 || gIdx[i] >= groups) {
          throw new IllegalArgumentException(
              layer
                  + ": g_idx["
                  + i
                  + "] = "
                  + gIdx[i]
                  + " is out of range, expected 0.."
                  + (groups - 1)
                  + " (K/G = "
                  + groups
                  + " groups)");
        }
      }
    }
    if (bias != null && bias.length != n) {
      throw new IllegalArgumentException(
          layer + ": bias holds " + bias.length + " values, expected N=" + n);
    }
  }

  /**
   * The code every weight code is measured from when there are no zero points: the type's bias for
   * {@code uint4b8}, 8 for {@code int4} (stored as {@code value + 8}), 0 for {@code uint4}.
   */
  public static int codeZero(ScalarType type) {
    if (type.equals(ScalarType.INT4)) {
      return 8;
    }
    return type.bias();
  }

  /**
   * The scales rounded to {@code type}, as kernels hold them: vLLM loads scales into the model
   * dtype, one rounding, once.
   */
  public float[] scalesIn(DType type) {
    float[] rounded = new float[scales.length];
    for (int i = 0; i < rounded.length; i++) {
      rounded[i] = type.round(scales[i]);
    }
    return rounded;
  }

  /** The group of every input feature, [K]: {@code g_idx} or {@code k / G}. */
  public int[] groups() {
    int[] g = new int[config.k()];
    for (int k = 0; k < g.length; k++) {
      g[k] = group(k);
    }
    return g;
  }

  /** Group of input feature {@code k}. */
  public int group(int k) {
    return gIdx != null ? gIdx[k] : k / config.effectiveGroupSize();
  }

  /** The integer value {@code code - zero} of weight (k, n). */
  public int value(int k, int n) {
    int zero = zeros != null ? zeros.code(group(k), n) : codeZero(config.weightType());
    return weight.code(k, n) - zero;
  }

  /** The weight repacked to {@code layout} (this object when it is already there). */
  public QuantizedLinear withWeightLayout(Int4Layout layout) {
    PackedInt4Matrix w = weight.toLayout(layout);
    return w == weight ? this : new QuantizedLinear(config, w, scales, zeros, gIdx, bias);
  }
}
