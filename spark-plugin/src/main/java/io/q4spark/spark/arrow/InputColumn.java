package io.q4spark.spark.arrow;

import java.io.Serializable;
import java.util.Arrays;
import org.apache.spark.sql.catalyst.expressions.UnsafeArrayData;
import org.apache.spark.sql.catalyst.util.ArrayData;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.unsafe.Platform;

/**
 * The activation column of a Dataset: where it is in the row and how its values are stored. {@code
 * array<float>} and {@code array<double>} are read; Spark ML's {@code vector} is not (this build
 * has no {@code spark-mllib}: see {@link #EXPECTED}).
 *
 * @param name the column name
 * @param ordinal its position in the row
 * @param doubles whether it is {@code array<double>} (values rounded to float on the way in)
 * @param containsNull whether the array type admits null elements (each row is then checked)
 */
public record InputColumn(String name, int ordinal, boolean doubles, boolean containsNull)
    implements Serializable {
  private static final long serialVersionUID = 1L;

  /** The types an input column may have, for messages. */
  public static final String EXPECTED = "array<float> or array<double>";

  /**
   * Why a row's array cannot be used as K activations, or null: the wrong length, or (when the type
   * admits them) a null element. The text follows "row ... " in messages.
   */
  public String problem(ArrayData a, int k) {
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
    if (type instanceof ArrayType a
        && (a.elementType().equals(DataTypes.FloatType)
            || a.elementType().equals(DataTypes.DoubleType))) {
      return new InputColumn(
          name, ordinal, a.elementType().equals(DataTypes.DoubleType), a.containsNull());
    }
    throw new IllegalArgumentException(
        where
            + ": column '"
            + name
            + "' has type "
            + type.simpleString()
            + ", expected "
            + EXPECTED);
  }
}
