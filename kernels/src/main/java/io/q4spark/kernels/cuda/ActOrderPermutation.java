package io.q4spark.kernels.cuda;

import io.q4spark.kernels.QuantizedLinear;
import java.util.Arrays;
import java.util.Comparator;
import java.util.stream.IntStream;

/**
 * Act-order on the GPU, as vLLM's Marlin does it: the weight rows are sorted by group once at
 * prepare time, so that every group is a contiguous run of G rows again, and each call gathers the
 * activations' columns in the same order ({@code x'[m, j] = x[m, perm[j]]}). The sum over k is the
 * same sum in another order.
 */
final class ActOrderPermutation {
  private ActOrderPermutation() {}

  /**
   * The input features sorted by group (stable), or null for a layer without {@code g_idx}.
   *
   * @throws IllegalArgumentException when a group does not hold exactly G features (the sorted rows
   *     would not fall into groups of G), naming the layer and the group
   */
  static int[] of(QuantizedLinear layer, String kernel) {
    int[] gIdx = layer.gIdx();
    if (gIdx == null) {
      return null;
    }
    int k = layer.config().k();
    int g = layer.config().effectiveGroupSize();
    int[] perm =
        IntStream.range(0, k)
            .boxed()
            .sorted(Comparator.comparingInt(i -> gIdx[i]))
            .mapToInt(Integer::intValue)
            .toArray();
    int[] count = new int[layer.config().numGroups()];
    for (int i : gIdx) {
      count[i]++;
    }
    for (int group = 0; group < count.length; group++) {
      int expected = Math.min(g, k - group * g);
      if (count[group] != expected) {
        throw new IllegalArgumentException(
            "layer "
                + layer.config().layer()
                + ": "
                + kernel
                + " needs every act-order group to hold G="
                + g
                + " input features, but g_idx puts "
                + count[group]
                + " in group "
                + group
                + " (counts "
                + Arrays.toString(Arrays.copyOf(count, Math.min(count.length, 16)))
                + (count.length > 16 ? "..." : "")
                + ")");
      }
    }
    return perm;
  }
}
