package io.q4spark.kernels;

import java.lang.foreign.MemorySegment;

/**
 * A quantized linear layer ready to run: selection done once, weights repacked once, every call
 * checked here (the facade checks, the kernel computes). Activations are rounded to the layer's
 * activation dtype on the way in, as a model running in that dtype holds them.
 */
public final class Q4Linear implements AutoCloseable {
  // Not the QuantizedLinear: the kernel holds the weights in its own layout, and keeping the
  // checkpoint's copy alive here would double the layer's memory.
  private final LinearLayerConfig config;
  private final KernelSelection selection;
  private final PreparedLinear prepared;

  /** The layer in the many-rows kernel's layout, or null (see {@link KernelSelection}). */
  private final PreparedLinear manyRows;

  private final int manyRowsFrom;
  private final float[] bias;

  private Q4Linear(
      QuantizedLinear layer,
      KernelSelection selection,
      PreparedLinear prepared,
      PreparedLinear manyRows) {
    this.config = layer.config();
    this.selection = selection;
    this.prepared = prepared;
    this.manyRows = manyRows;
    this.manyRowsFrom = selection.manyRowsFrom();
    this.bias = layer.bias() == null ? null : roundTo(layer.config().actType(), layer.bias());
  }

  /**
   * Selects a kernel for {@code layer} under {@code options} and prepares it (and, where selection
   * gave calls of many rows to another kernel, prepares that one too).
   */
  public static Q4Linear create(QuantizedLinear layer, KernelOptions options) {
    KernelSelection selection = KernelSelector.select(layer.config(), options);
    PreparedLinear prepared = selection.chosen().prepare(layer, options);
    PreparedLinear many = null;
    if (selection.manyRows() != null) {
      try {
        many = selection.manyRows().prepare(layer, options);
      } catch (RuntimeException e) {
        prepared.close();
        throw e;
      }
    }
    return new Q4Linear(layer, selection, prepared, many);
  }

  /** The prepared kernel a call of {@code rows} rows runs on. */
  private PreparedLinear forRows(int rows) {
    return manyRows != null && rows >= manyRowsFrom ? manyRows : prepared;
  }

  public LinearLayerConfig config() {
    return config;
  }

  public KernelSelection selection() {
    return selection;
  }

  /** Name of the kernel running this layer: {@code A}, or {@code A, B from R rows}. */
  public String kernel() {
    return manyRows == null
        ? prepared.kernel()
        : prepared.kernel() + ", " + manyRows.kernel() + " from " + manyRowsFrom + " rows";
  }

  /**
   * Applies the layer (with its bias) to {@code rows} rows of K activations.
   *
   * @return {@code rows * N} outputs, row-major
   */
  public float[] apply(float[] x, int rows) {
    float[] out = new float[Math.multiplyExact(rows, config().n())];
    apply(x, rows, out);
    return out;
  }

  /** As {@link #apply(float[], int)}, into {@code out}. */
  public void apply(float[] x, int rows, float[] out) {
    LinearLayerConfig c = config();
    checkRows(c, rows);
    long expected = (long) rows * c.k();
    if (x.length != expected) {
      throw new IllegalArgumentException(
          "layer "
              + c.layer()
              + ": activations hold "
              + x.length
              + " values, expected rows * K = "
              + rows
              + " * "
              + c.k()
              + " = "
              + expected);
    }
    checkOut(c, rows, out);
    if (rows == 0) {
      return;
    }
    forRows(rows).apply(roundTo(c.actType(), x), rows, bias, out);
  }

  /**
   * As {@link #apply(float[], int, float[])}, reading the rows from native memory (an Arrow
   * buffer): {@code rows * K} fp32 values at {@code x}, rounded to the activation dtype by the
   * kernel. Native and GPU kernels read the memory in place ({@link #readsNativeMemory(int)}); the
   * Java kernels take one copy onto the heap.
   */
  public void apply(MemorySegment x, int rows, float[] out) {
    LinearLayerConfig c = config();
    checkRows(c, rows);
    long expected = 4L * rows * c.k();
    if (x.byteSize() < expected) {
      throw new IllegalArgumentException(
          "layer "
              + c.layer()
              + ": the activations' memory holds "
              + x.byteSize()
              + " bytes, expected at least 4 * rows * K = "
              + expected);
    }
    checkOut(c, rows, out);
    if (rows == 0) {
      return;
    }
    forRows(rows).apply(x, rows, bias, out);
  }

  private static void checkRows(LinearLayerConfig c, int rows) {
    if (rows < 0) {
      throw new IllegalArgumentException("layer " + c.layer() + ": rows must be >= 0, was " + rows);
    }
  }

  private static void checkOut(LinearLayerConfig c, int rows, float[] out) {
    if (out.length < (long) rows * c.n()) {
      throw new IllegalArgumentException(
          "layer "
              + c.layer()
              + ": output buffer holds "
              + out.length
              + " values, expected at least rows * N = "
              + (long) rows * c.n());
    }
  }

  /** Bytes a call of {@code rows} rows copies to the GPU and back ({@code [to, from]}). */
  public long[] deviceTraffic(int rows) {
    return forRows(rows).deviceTraffic(rows);
  }

  /**
   * Whether a call of {@code rows} rows through {@link #apply(MemorySegment, int, float[])} reads
   * the native memory in place (the kernel that takes such calls is a native or GPU one).
   */
  public boolean readsNativeMemory(int rows) {
    return forRows(rows).readsNativeMemory();
  }

  /**
   * Applies the layer to each row; a row of the wrong length is reported with its index and nothing
   * is computed.
   */
  public float[][] apply(float[][] rows) {
    int k = config().k();
    float[] flat = new float[Math.multiplyExact(rows.length, k)];
    for (int r = 0; r < rows.length; r++) {
      if (rows[r] == null || rows[r].length != k) {
        throw new IllegalArgumentException(
            "layer "
                + config().layer()
                + ": activation row "
                + r
                + " has "
                + (rows[r] == null ? "no values (null)" : rows[r].length + " values")
                + ", expected K="
                + k);
      }
      System.arraycopy(rows[r], 0, flat, r * k, k);
    }
    float[] out = apply(flat, rows.length);
    int n = config().n();
    float[][] result = new float[rows.length][];
    for (int r = 0; r < rows.length; r++) {
      result[r] = java.util.Arrays.copyOfRange(out, r * n, (r + 1) * n);
    }
    return result;
  }

  private static float[] roundTo(DType act, float[] values) {
    if (act == DType.F32) {
      return values;
    }
    float[] rounded = values.clone();
    act.roundInPlace(rounded);
    return rounded;
  }

  @Override
  public void close() {
    prepared.close();
    if (manyRows != null) {
      manyRows.close();
    }
  }
}
