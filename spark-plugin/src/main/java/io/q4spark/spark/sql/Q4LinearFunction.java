package io.q4spark.spark.sql;

import io.q4spark.spark.arrow.InputColumn;
import org.apache.spark.sql.connector.catalog.functions.BoundFunction;
import org.apache.spark.sql.connector.catalog.functions.UnboundFunction;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.StringType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * {@code q4_linear(model, features)}: the registered model {@code model} (a string, normally a
 * literal) applied to {@code features} ({@code array<float>}, {@code array<double>} or a Spark ML
 * {@code vector} of the model's K values), giving {@code array<float>} of its N outputs; null for a
 * null input.
 *
 * <p>Binding checks the argument types and returns the variant for the features' element type,
 * whose static {@code invoke} Spark calls without boxing ({@link Q4LinearFloats}, {@link
 * Q4LinearDoubles}, {@link Q4LinearVectors}). The same function is reached as {@code q4_linear}
 * (through {@link Q4SqlExtensions}) and as {@code q4.linear} (through {@link Q4FunctionCatalog}).
 */
public final class Q4LinearFunction implements UnboundFunction {
  private static final long serialVersionUID = 1L;

  /** The unqualified SQL name. */
  public static final String NAME = "q4_linear";

  /** The name in {@link Q4FunctionCatalog}. */
  public static final String CATALOG_NAME = "linear";

  private final String name;

  /**
   * @param name the name the function was called by, for messages
   */
  public Q4LinearFunction(String name) {
    this.name = name;
  }

  @Override
  public String name() {
    return name;
  }

  @Override
  public String description() {
    return name
        + "(model, features): the registered q4spark model applied to features (array<float>,"
        + " array<double> or vector of its K inputs), giving array<float> of its N outputs; null for a null"
        + " input";
  }

  /**
   * @throws UnsupportedOperationException naming the argument, its type and the expected types
   *     (Spark reports it as an analysis error)
   */
  @Override
  public BoundFunction bind(StructType inputType) {
    StructField[] args = inputType.fields();
    if (args.length != 2) {
      throw new UnsupportedOperationException(
          name
              + " takes 2 arguments (model, features), but was given "
              + args.length
              + ": "
              + inputType.simpleString());
    }
    DataType model = args[0].dataType();
    if (!(model instanceof StringType)) {
      throw new UnsupportedOperationException(
          name
              + ": argument 1 (model) has type "
              + model.simpleString()
              + ", expected string (a registered model's name)");
    }
    DataType features = args[1].dataType();
    InputColumn.Kind kind = InputColumn.kindOf(features);
    if (kind != null) {
      return switch (kind) {
        case FLOATS -> new Q4LinearFloats(name, model, features);
        case DOUBLES -> new Q4LinearDoubles(name, model, features);
        case VECTOR -> new Q4LinearVectors(name, model, features);
      };
    }
    throw new UnsupportedOperationException(
        name
            + ": argument 2 (features) has type "
            + features.simpleString()
            + ", expected "
            + InputColumn.EXPECTED);
  }
}
