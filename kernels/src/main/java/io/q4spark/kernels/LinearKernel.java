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
   * From how many rows on this kernel runs {@code config} faster than the kernel its catalog entry
   * names ({@link KernelCatalog.Entry#manyRowsAfter}), as measured; 0 (the default) when it does
   * not here. When that kernel is chosen for a layer, calls of this many rows or more go to this
   * one (a kernel built for large GEMMs behind one that streams the weights for a few rows).
   */
  default int fasterFromRows(LinearLayerConfig config) {
    return 0;
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
