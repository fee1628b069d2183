package io.q4spark.kernels;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

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

  /**
   * As {@link #apply(float[], int, float[], float[])}, reading the rows from native memory (an
   * Arrow buffer): {@code x} holds {@code rows * K} fp32 values, not yet rounded to the activation
   * dtype (the kernel rounds them as {@link Q4Linear} does for arrays). Kernels that read native
   * memory directly override this ({@link #readsNativeMemory}); the default copies the rows onto
   * the heap once.
   */
  default void apply(MemorySegment x, int rows, float[] bias, float[] out) {
    float[] heap = new float[Math.multiplyExact(rows, config().k())];
    MemorySegment.copy(x, ValueLayout.JAVA_FLOAT, 0, heap, 0, heap.length);
    config().actType().roundInPlace(heap);
    apply(heap, rows, bias, out);
  }

  /** Whether {@link #apply(MemorySegment, int, float[], float[])} reads native memory in place. */
  default boolean readsNativeMemory() {
    return false;
  }

  /**
   * Bytes a call of {@code rows} rows copies to a device and back ({@code [to, from]}): activations
   * in and outputs out for a GPU kernel, zeros for kernels that run on the host.
   */
  default long[] deviceTraffic(int rows) {
    return new long[2];
  }

  /** Frees what the kernel holds outside the Java heap; a no-op for heap-only kernels. */
  @Override
  default void close() {}
}
