package io.q4spark.spark.arrow;

import java.io.Serializable;
import java.util.Arrays;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.UnsafeArrayData;
import org.apache.spark.sql.catalyst.util.ArrayData;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.types.UserDefinedType;
import org.apache.spark.unsafe.Platform;

/**
 * The activation column of a Dataset: where it is in the row and how its values are stored: {@code
 * array<float>}, {@code array<double>} (rounded to float on the way in) or Spark ML's {@code
 * vector}, dense or sparse.
 *
 * <p>A value is what Spark holds for the column in an internal row: {@link ArrayData} for arrays,
 * and for vectors the {@link InternalRow} of {@code VectorUDT}'s storage type
 *
 * <pre>
 *   struct&lt;type: tinyint (0 sparse, 1 dense), size: int, indices: array&lt;int&gt;, values: array&lt;double&gt;&gt;
 * </pre>
 *
 * (dense vectors leave {@code size} and {@code indices} null). Vectors are recognised by their
 * UDT's class name, so reading them needs no {@code spark-mllib} on the classpath.
 *
 * @param name the column name
 * @param ordinal its position in the row
 * @param kind how the values are stored
 * @param containsNull whether an array type admits null elements (each row is then checked)
 */
public record InputColumn(String name, int ordinal, Kind kind, boolean containsNull)
    implements Serializable {
  private static final long serialVersionUID = 1L;

  /** The types an input column may have, for messages. */
  public static final String EXPECTED = "array<float>, array<double> or vector (Spark ML)";

  /** How a column's values are stored. */
  public enum Kind {
    FLOATS,
    DOUBLES,
    VECTOR
  }

  /** Spark ML's and the older RDD API's vector types: the same storage struct. */
  private static final java.util.Set<String> VECTOR_UDTS =
      java.util.Set.of(
          "org.apache.spark.ml.linalg.VectorUDT", "org.apache.spark.mllib.linalg.VectorUDT");

  /** Fields of the vector struct. */
  private static final int V_TYPE = 0;

  private static final int V_SIZE = 1;
  private static final int V_INDICES = 2;
  private static final int V_VALUES = 3;
  private static final int V_FIELDS = 4;
  private static final byte SPARSE = 0;
  private static final byte DENSE = 1;

  /** The kind of values a column of {@code type} holds, or null when it cannot be an input. */
  public static Kind kindOf(DataType type) {
    if (type instanceof ArrayType a) {
      if (a.elementType().equals(DataTypes.FloatType)) {
        return Kind.FLOATS;
      }
      if (a.elementType().equals(DataTypes.DoubleType)) {
        return Kind.DOUBLES;
      }
      return null;
    }
    if (type instanceof UserDefinedType<?> u && VECTOR_UDTS.contains(u.getClass().getName())) {
      return Kind.VECTOR;
    }
    return null;
  }

  /** The input column of {@code type} at {@code ordinal}, or null when the type cannot be one. */
  public static InputColumn of(String name, int ordinal, DataType type) {
    Kind kind = kindOf(type);
    if (kind == null) {
      return null;
    }
    return new InputColumn(name, ordinal, kind, type instanceof ArrayType a && a.containsNull());
  }

  /** This column's value in {@code row} (not null there). */
  public Object get(InternalRow row) {
    return kind == Kind.VECTOR ? row.getStruct(ordinal, V_FIELDS) : row.getArray(ordinal);
  }

  /**
   * Why a value cannot be used as K activations, or null: the wrong length, (when the type admits
   * them) a null element, or a malformed sparse vector. The text follows "row ... " in messages.
   */
  public String problem(Object value, int k) {
    if (kind == Kind.VECTOR) {
      return vectorProblem((InternalRow) value, k);
    }
    ArrayData a = (ArrayData) value;
    int found = a.numElements();
    if (found != k) {
      return "has " + found + " values, expected K=" + k;
    }
    if (containsNull) {
      int nullAt = firstNull(a);
      if (nullAt >= 0) {
        return "has a null at element " + nullAt + ", expected K=" + k + " non-null values";
      }
    }
    return null;
  }

  private static String vectorProblem(InternalRow v, int k) {
    byte type = v.getByte(V_TYPE);
    if (type == DENSE) {
      if (v.isNullAt(V_VALUES)) {
        return "is a dense vector without values, expected K=" + k + " values";
      }
      int found = v.getArray(V_VALUES).numElements();
      return found == k ? null : "is a dense vector of size " + found + ", expected K=" + k;
    }
    if (type != SPARSE) {
      return "is a vector of type " + type + ", expected 0 (sparse) or 1 (dense)";
    }
    if (v.isNullAt(V_SIZE) || v.isNullAt(V_INDICES) || v.isNullAt(V_VALUES)) {
      return "is a sparse vector without size, indices or values, expected all three";
    }
    int size = v.getInt(V_SIZE);
    if (size != k) {
      return "is a sparse vector of size " + size + ", expected K=" + k;
    }
    ArrayData indices = v.getArray(V_INDICES);
    int nnz = v.getArray(V_VALUES).numElements();
    if (indices.numElements() != nnz) {
      return "is a sparse vector of "
          + indices.numElements()
          + " indices and "
          + nnz
          + " values, expected as many of each";
    }
    for (int i = 0; i < nnz; i++) {
      int at = indices.getInt(i);
      if (at < 0 || at >= k) {
        return "is a sparse vector with index " + at + ", expected indices in [0, K=" + k + ")";
      }
    }
    return null;
  }

  /** Appends a value (for which {@link #problem} is null) as one row of {@code batch}. */
  public void append(Object value, ActivationBatch batch) {
    switch (kind) {
      case FLOATS -> batch.appendFloats((ArrayData) value);
      case DOUBLES -> batch.appendDoubles((ArrayData) value);
      case VECTOR -> {
        InternalRow v = (InternalRow) value;
        if (v.getByte(V_TYPE) == DENSE) {
          batch.appendDoubles(v.getArray(V_VALUES));
        } else {
          batch.appendSparse(v.getArray(V_INDICES), v.getArray(V_VALUES));
        }
      }
    }
  }

  /** A value (for which {@link #problem} is null) as K floats. */
  public float[] toFloats(Object value, int k) {
    if (kind == Kind.FLOATS) {
      return ((ArrayData) value).toFloatArray();
    }
    float[] x = new float[k];
    ArrayData values;
    ArrayData indices = null;
    if (kind == Kind.DOUBLES) {
      values = (ArrayData) value;
    } else {
      InternalRow v = (InternalRow) value;
      values = v.getArray(V_VALUES);
      if (v.getByte(V_TYPE) == SPARSE) {
        indices = v.getArray(V_INDICES);
      }
    }
    for (int i = 0; i < values.numElements(); i++) {
      x[indices == null ? i : indices.getInt(i)] = (float) values.getDouble(i);
    }
    return x;
  }

  /** Index of the first null element, or -1; reads the null bitmap a word at a time. */
  private static int firstNull(ArrayData a) {
    int count = a.numElements();
    if (a instanceof UnsafeArrayData u) {
      // Layout: [numElements: 8 bytes][null bits: 8 bytes per 64 elements][values].
      for (int w = 0; w < (count + 63) / 64; w++) {
        long bits = Platform.getLong(u.getBaseObject(), u.getBaseOffset() + 8 + 8L * w);
        if (bits != 0) {
          return w * 64 + Long.numberOfTrailingZeros(bits);
        }
      }
      return -1;
    }
    for (int i = 0; i < count; i++) {
      if (a.isNullAt(i)) {
        return i;
      }
    }
    return -1;
  }

  /**
   * Finds column {@code name} in {@code schema} and checks its type.
   *
   * @param where who asks, for messages (e.g. {@code Q4.apply(model 'mlp')})
   * @throws IllegalArgumentException naming the column and its type, or the columns there are
   */
  public static InputColumn resolve(StructType schema, String name, String where) {
    if (!Arrays.asList(schema.fieldNames()).contains(name)) {
      throw new IllegalArgumentException(
          where
              + ": there is no column '"
              + name
              + "'; the columns are "
              + Arrays.toString(schema.fieldNames()));
    }
    int ordinal = schema.fieldIndex(name);
    DataType type = schema.fields()[ordinal].dataType();
    InputColumn column = of(name, ordinal, type);
    if (column == null) {
      throw new IllegalArgumentException(
          where
              + ": column '"
              + name
              + "' has type "
              + type.simpleString()
              + ", expected "
              + EXPECTED);
    }
    return column;
  }
}
