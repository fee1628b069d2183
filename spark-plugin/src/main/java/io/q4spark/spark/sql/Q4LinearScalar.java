package io.q4spark.spark.sql;

import io.q4spark.spark.arrow.InputColumn;
import java.util.Locale;
import java.util.Objects;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.util.ArrayData;
import org.apache.spark.sql.connector.catalog.functions.ScalarFunction;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;

/**
 * {@code q4_linear} bound to its argument types. Each subclass declares the magic method {@code
 * public static ArrayData invoke(UTF8String model, F features)} ({@code F} is {@code ArrayData} for
 * arrays, {@code InternalRow} for vectors): Spark finds it by the declared {@link #inputTypes} and
 * calls it from generated code ({@code StaticInvoke}), with Spark's internal values and no boxing.
 * A call in a projection is usually lifted into the batched operator instead ({@link
 * Q4BatchEvalStrategy}); what remains runs row by row ({@link Q4LinearRows}).
 */
public abstract sealed class Q4LinearScalar implements ScalarFunction<ArrayData>
    permits Q4LinearFloats, Q4LinearDoubles, Q4LinearVectors {
  private static final long serialVersionUID = 1L;

  /** The result type: N outputs, never a null element. */
  public static final ArrayType RESULT = DataTypes.createArrayType(DataTypes.FloatType, false);

  private final String name;
  private final DataType modelType;
  private final DataType featuresType;
  private final InputColumn.Kind kind;
  private final boolean containsNull;

  Q4LinearScalar(String name, DataType modelType, DataType featuresType) {
    this.name = name;
    this.modelType = modelType;
    this.featuresType = featuresType;
    this.kind = InputColumn.kindOf(featuresType);
    this.containsNull = featuresType instanceof ArrayType a && a.containsNull();
  }

  /** How the features are stored; a subclass per kind. */
  public InputColumn.Kind kind() {
    return kind;
  }

  @Override
  public DataType[] inputTypes() {
    // Exactly the bound types: Spark then inserts no cast before the call.
    return new DataType[] {modelType, featuresType};
  }

  @Override
  public DataType resultType() {
    return RESULT;
  }

  @Override
  public String name() {
    return name;
  }

  @Override
  public String canonicalName() {
    return "q4spark." + Q4LinearFunction.NAME + "(" + kind.name().toLowerCase(Locale.ROOT) + ")";
  }

  /** Equal for equal bindings, so Spark sees two calls of the same arguments as one expression. */
  @Override
  public boolean equals(Object o) {
    return o instanceof Q4LinearScalar f
        && f.getClass() == getClass()
        && f.name.equals(name)
        && f.modelType.equals(modelType)
        && f.featuresType.equals(featuresType);
  }

  @Override
  public int hashCode() {
    return Objects.hash(getClass(), name, modelType, featuresType);
  }

  /** The slow path Spark takes only where it cannot call the magic method. */
  @Override
  public ArrayData produceResult(InternalRow input) {
    return Q4LinearRows.apply(
        input.isNullAt(0) ? null : input.getUTF8String(0),
        input.isNullAt(1) ? null : new InputColumn(name, 1, kind, containsNull).get(input),
        kind,
        containsNull);
  }
}
