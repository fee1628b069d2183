package io.q4spark.kernels;

/**
 * A layer's weights in one kernel's layout, ready to run. Callers go through {@link Q4Linear},
 * which checks the arguments; implementations only assert them.
 */
public interface PreparedLinear extends AutoCloseable {
  LinearLayerConfig config();

  /** Name of the kernel that prepared this layer. */
  String kernel();

  /**
   * {@code out[m, n] = sum_k x[m, k] * w(k, n) (+ bias[n])}, rounded as the kernel family
   * specifies.
   *
   * @param x {@code rows * K} activations, row-major, each a value of the layer's activation dtype
   * @param rows number of rows (tokens), M
   * @param bias [N] in the activation dtype, or null
   * @param out receives {@code rows * N} values of the output dtype, row-major
   */
  void apply(float[] x, int rows, float[] bias, float[] out);

  /** Frees what the kernel holds outside the Java heap; a no-op for heap-only kernels. */
  @Override
  default void close() {}
}
