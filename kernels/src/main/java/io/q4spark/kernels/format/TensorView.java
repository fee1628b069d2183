package io.q4spark.kernels.format;

import io.q4spark.kernels.BFloat16;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * One tensor of a safetensors file: name, element type, shape and a zero-copy view of its bytes in
 * the mapped file. The typed {@code toXxxArray} methods copy the data onto the heap, decoding the
 * little-endian bytes; each accepts only the dtypes it can represent without loss of meaning.
 *
 * <p>The view is valid while the {@link TensorSource} it came from is open; after that, reading
 * {@link #data()} throws {@link IllegalStateException}.
 */
public final class TensorView {

  /**
   * Longest array the typed copies create. HotSpot refuses lengths within a few elements of {@link
   * Integer#MAX_VALUE} (array header words), so this stays clear of that edge and fails with a
   * message instead of an {@link OutOfMemoryError}.
   */
  static final int MAX_ARRAY_LENGTH = Integer.MAX_VALUE - 8;

  private final String name;
  private final SafetensorsDType dtype;
  private final long[] shape;
  private final long numel;
  private final MemorySegment data;
  private final String source;

  /**
   * @param data exactly {@code numel * dtype.byteSize()} bytes; the caller has validated this
   */
  TensorView(
      String name,
      SafetensorsDType dtype,
      long[] shape,
      long numel,
      MemorySegment data,
      String source) {
    assert data.byteSize() == numel * dtype.byteSize() : name + ": data size does not match shape";
    this.name = name;
    this.dtype = dtype;
    this.shape = shape.clone();
    this.numel = numel;
    this.data = data;
    this.source = source;
  }

  public String name() {
    return name;
  }

  public SafetensorsDType dtype() {
    return dtype;
  }

  /** The shape, outermost dimension first (row-major); a copy. Empty for a scalar. */
  public long[] shape() {
    return shape.clone();
  }

  public int rank() {
    return shape.length;
  }

  /** Size of dimension {@code i}, 0-based from the outermost. */
  public long dim(int i) {
    if (i < 0 || i >= shape.length) {
      throw new IndexOutOfBoundsException(
          where() + " has rank " + shape.length + ", so dimension " + i + " does not exist");
    }
    return shape[i];
  }

  /** Number of elements: the product of the shape, 1 for a scalar. */
  public long numel() {
    return numel;
  }

  /** The tensor's bytes, little-endian and row-major, as a read-only slice of the mapped file. */
  public MemorySegment data() {
    return data;
  }

  /** The file the tensor lives in. */
  public String source() {
    return source;
  }

  /**
   * Checks the shape.
   *
   * @throws SafetensorsException naming the tensor, its file, its shape and the expected one
   */
  public void requireShape(long... expected) {
    if (!Arrays.equals(shape, expected)) {
      throw new SafetensorsException(
          where()
              + " has shape "
              + Arrays.toString(shape)
              + ", expected "
              + Arrays.toString(expected));
    }
  }

  /**
   * Copies an {@code I32} or {@code U32} tensor; {@code U32} values keep their bits (read
   * unsigned).
   */
  public int[] toIntArray() {
    requireDType(SafetensorsDType.I32, SafetensorsDType.U32);
    int[] out = new int[arrayLength()];
    MemorySegment.copy(data, LittleEndian.INT, 0, out, 0, out.length);
    return out;
  }

  /** Copies an {@code I8}, {@code U8} or {@code BOOL} tensor; {@code U8} values keep their bits. */
  public byte[] toByteArray() {
    requireDType(SafetensorsDType.I8, SafetensorsDType.U8, SafetensorsDType.BOOL);
    byte[] out = new byte[arrayLength()];
    MemorySegment.copy(data, ValueLayout.JAVA_BYTE, 0, out, 0, out.length);
    return out;
  }

  /** Copies an {@code I64} or {@code U64} tensor; {@code U64} values keep their bits. */
  public long[] toLongArray() {
    requireDType(SafetensorsDType.I64, SafetensorsDType.U64);
    long[] out = new long[arrayLength()];
    MemorySegment.copy(data, LittleEndian.LONG, 0, out, 0, out.length);
    return out;
  }

  /** Copies an {@code F16}, {@code BF16} or {@code F32} tensor; widening is exact. */
  public float[] toFloatArray() {
    requireDType(SafetensorsDType.F16, SafetensorsDType.BF16, SafetensorsDType.F32);
    float[] out = new float[arrayLength()];
    switch (dtype) {
      case F32 -> MemorySegment.copy(data, LittleEndian.FLOAT, 0, out, 0, out.length);
      case F16 -> {
        for (int i = 0; i < out.length; i++) {
          out[i] = Float.float16ToFloat(data.getAtIndex(LittleEndian.SHORT, i));
        }
      }
      case BF16 -> {
        for (int i = 0; i < out.length; i++) {
          out[i] = BFloat16.toFloat(data.getAtIndex(LittleEndian.SHORT, i));
        }
      }
      default -> throw new AssertionError(dtype);
    }
    return out;
  }

  /**
   * Copies an {@code F64} tensor, or an {@code F32}, {@code F16} or {@code BF16} one widened
   * exactly.
   */
  public double[] toDoubleArray() {
    requireDType(
        SafetensorsDType.F64, SafetensorsDType.F32, SafetensorsDType.F16, SafetensorsDType.BF16);
    if (dtype == SafetensorsDType.F64) {
      double[] out = new double[arrayLength()];
      MemorySegment.copy(data, LittleEndian.DOUBLE, 0, out, 0, out.length);
      return out;
    }
    float[] narrow = toFloatArray();
    double[] out = new double[narrow.length];
    for (int i = 0; i < narrow.length; i++) {
      out[i] = narrow[i];
    }
    return out;
  }

  @Override
  public String toString() {
    return "TensorView["
        + name
        + " "
        + dtype
        + " "
        + Arrays.toString(shape)
        + " in "
        + source
        + "]";
  }

  private String where() {
    return "tensor '" + name + "' in " + source;
  }

  private void requireDType(SafetensorsDType... allowed) {
    for (SafetensorsDType type : allowed) {
      if (type == dtype) {
        return;
      }
    }
    throw new SafetensorsException(
        where() + " has dtype " + dtype + ", expected one of " + Arrays.toString(allowed));
  }

  private int arrayLength() {
    if (numel > MAX_ARRAY_LENGTH) {
      throw new SafetensorsException(
          where()
              + " has "
              + numel
              + " elements (shape "
              + Arrays.toString(shape)
              + "), more than a Java array holds ("
              + MAX_ARRAY_LENGTH
              + "); read it through data() instead");
    }
    return (int) numel;
  }
}
