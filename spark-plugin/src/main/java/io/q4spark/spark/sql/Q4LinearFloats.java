package io.q4spark.spark.sql;

import io.q4spark.spark.arrow.InputColumn;
import org.apache.spark.sql.catalyst.util.ArrayData;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.unsafe.types.UTF8String;

/** {@code q4_linear} over {@code array<float>} features. */
public final class Q4LinearFloats extends Q4LinearScalar {
  private static final long serialVersionUID = 1L;

  Q4LinearFloats(String name, DataType modelType, DataType featuresType) {
    super(name, modelType, featuresType);
  }

  /**
   * The magic method Spark calls for each row (arguments may be null: Spark does not propagate
   * nulls for V2 functions). Elements are checked for nulls, whatever the array type says.
   */
  public static ArrayData invoke(UTF8String model, ArrayData features) {
    return Q4LinearRows.apply(model, features, InputColumn.Kind.FLOATS, true);
  }
}
