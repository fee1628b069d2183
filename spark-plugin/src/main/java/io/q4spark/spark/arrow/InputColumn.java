package io.q4spark.spark.arrow;

import java.io.Serializable;
import java.util.Arrays;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

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
