package io.q4spark.spark.arrow;

import java.lang.foreign.MemorySegment;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.vector.Float4Vector;
import org.apache.arrow.vector.complex.FixedSizeListVector;
import org.apache.arrow.vector.types.FloatingPointPrecision;
import org.apache.arrow.vector.types.pojo.ArrowType;
import org.apache.arrow.vector.types.pojo.FieldType;
import org.apache.spark.sql.catalyst.expressions.UnsafeArrayData;
import org.apache.spark.sql.catalyst.util.ArrayData;
import org.apache.spark.unsafe.Platform;

/**
 * One batch of activation rows in Arrow memory: a {@code FixedSizeList<float32>[K]} vector whose
 * values are one contiguous off-heap buffer, rows back to back.
 *
 * <pre>
 *   value (row r, feature k) at  dataAddress + 4 * (r * K + k)
 * </pre>
 *
 * Rows are appended straight from Spark's {@code UnsafeArrayData} (one memory copy per row for
 * {@code array<float>}); GPU kernels read the batch as native memory ({@link #segment()}) and copy
 * it to the device from there, the Java kernels take it in one bulk copy ({@link #copyTo}).
 */
public final class ActivationBatch implements AutoCloseable {
  private final BufferAllocator allocator;
  private final FixedSizeListVector vector;
  private final Float4Vector values;
  private final int k;
  private final int capacity;
  private int rows;

  /**
   * @param parent the allocator to take a child from (its close reports leaks)
   * @param k values per row
   * @param capacity rows the batch holds
   */
  public ActivationBatch(BufferAllocator parent, int k, int capacity) {
    if ((long) k * capacity > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(
          "a batch of "
              + capacity
              + " rows of K="
              + k
              + " values holds more than 2^31 - 1 values: lower spark.q4.batch.rows");
    }
    this.allocator = parent.newChildAllocator("q4spark-activations", 0, Long.MAX_VALUE);
    this.k = k;
    this.capacity = capacity;
    this.vector = FixedSizeListVector.empty("activations", k, allocator);
    this.values =
        (Float4Vector)
            vector
                .addOrGetVector(
                    FieldType.notNullable(
                        new ArrowType.FloatingPoint(FloatingPointPrecision.SINGLE)))
                .getVector();
    vector.setInitialCapacity(capacity);
    vector.allocateNew();
    if (values.getValueCapacity() < k * capacity) {
      throw new IllegalStateException(
          "Arrow allocated "
              + values.getValueCapacity()
              + " values for a batch of "
              + capacity
              + " rows of K="
              + k);
    }
  }

  public int k() {
    return k;
  }

  public int capacity() {
    return capacity;
  }

  /** Rows appended since the last {@link #clear}. */
  public int rows() {
    return rows;
  }

  public boolean isFull() {
    return rows == capacity;
  }

  /** Address of row 0's first value. */
  public long dataAddress() {
    return values.getDataBufferAddress();
  }

  /** Appends a row of K floats ({@code array.numElements() == K}, no null elements). */
  public void appendFloats(ArrayData array) {
    long dest = rowAddress();
    if (array instanceof UnsafeArrayData u) {
      Platform.copyMemory(
          u.getBaseObject(),
          u.getBaseOffset() + UnsafeArrayData.calculateHeaderPortionInBytes(k),
          null,
          dest,
          (long) k * Float.BYTES);
    } else {
      for (int i = 0; i < k; i++) {
        Platform.putFloat(null, dest + (long) i * Float.BYTES, array.getFloat(i));
      }
    }
    vector.setNotNull(rows++);
  }

  /** Appends a row of K doubles, each rounded to float. */
  public void appendDoubles(ArrayData array) {
    long dest = rowAddress();
    for (int i = 0; i < k; i++) {
      Platform.putFloat(null, dest + (long) i * Float.BYTES, (float) array.getDouble(i));
    }
    vector.setNotNull(rows++);
  }

  /**
   * Appends a sparse row: zeros except {@code values[i]} (rounded to float) at {@code indices[i]},
   * each index in [0, K).
   */
  public void appendSparse(ArrayData indices, ArrayData values) {
    long dest = rowAddress();
    Platform.setMemory(dest, (byte) 0, (long) k * Float.BYTES);
    for (int i = 0; i < values.numElements(); i++) {
      Platform.putFloat(
          null, dest + (long) indices.getInt(i) * Float.BYTES, (float) values.getDouble(i));
    }
    vector.setNotNull(rows++);
  }

  private long rowAddress() {
    if (rows == capacity) {
      throw new IllegalStateException("the batch is full: " + capacity + " rows");
    }
    return dataAddress() + (long) rows * k * Float.BYTES;
  }

  /** The rows' values in place: {@code rows * K} fp32 values from {@link #dataAddress()}. */
  public MemorySegment segment() {
    return MemorySegment.ofAddress(dataAddress()).reinterpret((long) rows * k * Float.BYTES);
  }

  /** Copies the rows' values into {@code x[0, rows * K)}. */
  public void copyTo(float[] x) {
    long bytes = (long) rows * k * Float.BYTES;
    if (x.length < rows * k) {
      throw new IllegalArgumentException(
          "the array holds " + x.length + " values, the batch " + (long) rows * k);
    }
    Platform.copyMemory(null, dataAddress(), x, Platform.FLOAT_ARRAY_OFFSET, bytes);
  }

  /** Seals the vector's row count (for readers of the Arrow vector) without clearing. */
  public void seal() {
    vector.setValueCount(rows);
  }

  /** Empties the batch, keeping its memory. */
  public void clear() {
    for (int r = 0; r < rows; r++) {
      vector.setNull(r);
    }
    rows = 0;
  }

  @Override
  public void close() {
    vector.close();
    allocator.close();
  }
}
