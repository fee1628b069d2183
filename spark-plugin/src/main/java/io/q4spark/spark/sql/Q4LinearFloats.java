package io.q4spark.spark.sql;

import org.apache.spark.sql.catalyst.util.ArrayData;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.unsafe.types.UTF8String;

/** {@code q4_linear} over {@code array<float>} features. */
public final class Q4LinearFloats extends Q4LinearScalar {
  private static final long serialVersionUID = 1L;

  Q4LinearFloats(String name, DataType modelType, ArrayType featuresType) {
    super(name, modelType, featuresType);
  }

  @Override
  public boolean doubles() {
    return false;
  }

  /**
   * The magic method Spark calls for each row (arguments may be null: Spark does not propagate
   * nulls for V2 functions).
   */
  public static ArrayData invoke(UTF8String model, ArrayData features) {
    return Q4LinearRows.apply(model, features, false, true);
  }
}
