package io.q4spark.kernels;

import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.stream.IntStream;

/**
 * The whitelist a kernel declares: the shapes, types and group sizes it implements. An unsupported
 * layer is a rejection reason at selection, never a wrong result at launch. {@link #check} walks
 * the rules in vLLM's {@code TritonW4A16LinearKernel.can_implement} order and uses its messages.
 *
 * @param scheme the family the kernel implements
 * @param weightTypes accepted weight types
 * @param actTypes accepted activation dtypes
 * @param groupSizes the accepted group sizes (-1 for one group over K), or null for any group size
 *     that divides K
 * @param acceptsFullKGroup whether a group size equal to the full K is accepted even when not
 *     listed
 * @param kMultiple K must be a multiple of this
 * @param nMultiple N must be a multiple of this
 * @param zeroPoints whether asymmetric layers (zero points) are implemented
 * @param actOrder whether act-order ({@code g_idx}) is implemented
 */
public record KernelCapabilities(
    QuantScheme scheme,
    List<ScalarType> weightTypes,
    Set<DType> actTypes,
    int[] groupSizes,
    boolean acceptsFullKGroup,
    int kMultiple,
    int nMultiple,
    boolean zeroPoints,
    boolean actOrder) {

  /** Checks {@code c} against this whitelist; the first failing rule is the reason. */
  public Acceptance check(String kernel, LinearLayerConfig c) {
    if (c.scheme() != scheme) {
      return Acceptance.reject(
          kernel
              + " implements "
              + scheme
              + (scheme == QuantScheme.W4A16
                  ? " (floating-point activations)"
                  : " (int8 per-token activations)")
              + ", the layer is "
              + c.scheme());
    }
    if (!weightTypes.contains(c.weightType())) {
      return Acceptance.reject(
          "Quant type " + c.weightType() + " not supported; supported: " + weightTypes);
    }
    if (!actTypes.contains(c.actType())) {
      return Acceptance.reject(
          "Activation dtype "
              + c.actType()
              + " not supported; supported: "
              + Arrays.stream(DType.values()).filter(actTypes::contains).toList());
    }
    if (c.n() % nMultiple != 0) {
      return Acceptance.reject(
          "Output features ("
              + c.n()
              + ") must be divisible by "
              + nMultiple
              + (nMultiple == 8 ? " (8 int4 values packed per int32)" : ""));
    }
    if (c.k() % kMultiple != 0) {
      return Acceptance.reject(
          "Input features ("
              + c.k()
              + ") must be divisible by "
              + kMultiple
              + (kMultiple == 8 ? " (8 int4 values packed per int32)" : ""));
    }
    if (c.zeroPoints() && !zeroPoints) {
      return Acceptance.reject("Zero points (asymmetric weights) are not supported by " + kernel);
    }
    if (c.hasGIdx() && !actOrder) {
      return Acceptance.reject("Activation reordering (g_idx) is not supported by " + kernel);
    }
    int gs = c.groupSize();
    if (groupSizes != null
        && IntStream.of(groupSizes).noneMatch(g -> g == gs)
        && !(acceptsFullKGroup && gs == c.fullK())) {
      return Acceptance.reject(
          "Group size "
              + gs
              + " not supported; supported: "
              + Arrays.toString(groupSizes)
              + (acceptsFullKGroup ? " or full K (" + c.fullK() + ")" : ""));
    }
    int eff = c.effectiveGroupSize();
    if (c.k() % eff != 0) {
      return Acceptance.reject("Input features " + c.k() + " not divisible by group size " + eff);
    }
    return Acceptance.accept();
  }

  /** One line for {@code q4spark doctor}. */
  public String describe() {
    return scheme
        + " weights "
        + weightTypes
        + " activations "
        + Arrays.stream(DType.values()).filter(actTypes::contains).toList()
        + " groups "
        + (groupSizes == null ? "any dividing K" : Arrays.toString(groupSizes))
        + (acceptsFullKGroup && groupSizes != null ? " or full K" : "")
        + ", K%"
        + kMultiple
        + ", N%"
        + nMultiple
        + (zeroPoints ? ", zero points" : ", no zero points")
        + (actOrder ? ", act-order" : ", no act-order");
  }
}
