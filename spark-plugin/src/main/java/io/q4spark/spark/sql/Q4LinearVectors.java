package io.q4spark.spark.sql;

import io.q4spark.spark.arrow.InputColumn;
import org.apache.spark.sql.catalyst.util.ArrayData;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.unsafe.types.UTF8String;

/** {@code q4_linear} over {@code vector (Spark ML, dense or sparse)} features. */
public final class Q4LinearVectors extends Q4LinearScalar {
  private static final long serialVersionUID = 1L;

  Q4LinearVectors(String name, DataType modelType, DataType featuresType) {
    super(name, modelType, featuresType);
  }

  /**
   * The magic method Spark calls for each row (arguments may be null: Spark does not propagate
   * nulls for V2 functions). {@code features} is the vector's storage {@code InternalRow}; the
   * parameter is an {@code Object} because that is the Java class Spark looks the method up by for
   * a user-defined type.
   */
  public static ArrayData invoke(UTF8String model, Object features) {
    return Q4LinearRows.apply(model, features, InputColumn.Kind.VECTOR, false);
  }
}
