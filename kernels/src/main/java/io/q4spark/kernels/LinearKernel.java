package io.q4spark.kernels;

/**
 * One implementation of a quantized linear layer, after vLLM's {@code MPLinearKernel}: it says
 * whether it can implement a layer (and why not), repacks a layer's checkpoint weights once into
 * its own layout, and then runs it any number of times.
 *
 * <p>Implementations have a public no-argument constructor: {@link KernelCatalog} loads them by
 * name, so a backend whose library is missing disables only itself.
 */
public interface LinearKernel {
  /** The simple class name, as used by the deny-list and the forced choice. */
  default String name() {
    return getClass().getSimpleName();
  }

  /** The shapes, types and group sizes this kernel implements. */
  KernelCapabilities capabilities();

  /**
   * Whether this kernel can implement {@code config} on this machine; the reason when it cannot.
   * The default checks {@link #capabilities()}; backends that depend on hardware or a library check
   * that first.
   */
  default Acceptance canImplement(LinearLayerConfig config) {
    return capabilities().check(name(), config);
  }

  /**
   * Repacks {@code layer}'s weights into this kernel's layout, once. Only called for a layer whose
   * config this kernel accepted.
   */
  PreparedLinear prepare(QuantizedLinear layer, KernelOptions options);

  /** {@link #prepare(QuantizedLinear, KernelOptions)} with the default options. */
  default PreparedLinear prepare(QuantizedLinear layer) {
    return prepare(layer, KernelOptions.defaults());
  }
}
