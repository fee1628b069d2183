package io.q4spark.spark.sql;

import io.q4spark.spark.model.Q4Models;
import org.apache.spark.sql.SparkSessionExtensions;
import org.apache.spark.sql.catalyst.FunctionIdentifier;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.ExpressionInfo;
import org.apache.spark.sql.catalyst.expressions.V2ExpressionUtils;
import org.apache.spark.sql.catalyst.expressions.objects.StaticInvoke;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import org.apache.spark.sql.connector.catalog.functions.BoundFunction;
import org.apache.spark.sql.connector.catalog.functions.ScalarFunction;
import org.apache.spark.sql.errors.QueryCompilationErrors;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.unsafe.types.UTF8String;
import scala.Function1;
import scala.Tuple3;
import scala.collection.immutable.Seq;
import scala.jdk.javaapi.CollectionConverters;
import scala.runtime.BoxedUnit;

/**
 * q4spark's SQL, installed with {@code spark.sql.extensions=io.q4spark.spark.sql.Q4SqlExtensions}:
 *
 * <ul>
 *   <li>the function {@code q4_linear(model, features)} ({@link Q4LinearFunction}), resolved to the
 *       same static call as {@code q4.linear} from {@link Q4FunctionCatalog};
 *   <li>an analysis check that a constant model name is registered (naming the registered models
 *       when it is not);
 *   <li>the planner strategy that lifts calls out of projections into the batched operator ({@link
 *       Q4BatchEvalStrategy}).
 * </ul>
 */
public final class Q4SqlExtensions implements Function1<SparkSessionExtensions, BoxedUnit> {

  @Override
  public BoxedUnit apply(SparkSessionExtensions extensions) {
    extensions.injectFunction(
        new Tuple3<>(
            FunctionIdentifier.apply(Q4LinearFunction.NAME),
            new ExpressionInfo(
                Q4LinearFunction.class.getName(),
                null,
                Q4LinearFunction.NAME,
                new Q4LinearFunction(Q4LinearFunction.NAME).description(),
                "",
                "",
                "",
                "",
                "",
                "",
                "java_udf"),
            (Function1<Seq<Expression>, Expression>) Q4SqlExtensions::build));
    extensions.injectCheckRule(
        session ->
            (Function1<LogicalPlan, BoxedUnit>)
                plan -> {
                  checkModels(plan);
                  return BoxedUnit.UNIT;
                });
    extensions.injectPlannerStrategy(Q4BatchEvalStrategy::new);
    return BoxedUnit.UNIT;
  }

  /** Resolves {@code q4_linear(args)} exactly as Spark resolves {@code q4.linear(args)}. */
  static Expression build(Seq<Expression> args) {
    Q4LinearFunction unbound = new Q4LinearFunction(Q4LinearFunction.NAME);
    StructType input = new StructType();
    int i = 0;
    for (Expression e : CollectionConverters.asJava(args)) {
      input = input.add("_" + i++, e.dataType(), e.nullable());
    }
    BoundFunction bound;
    try {
      bound = unbound.bind(input);
    } catch (UnsupportedOperationException e) {
      throw undeclared(QueryCompilationErrors.functionCannotProcessInputError(unbound, args, e));
    }
    return V2ExpressionUtils.resolveScalarFunction((ScalarFunction<?>) bound, args);
  }

  /** The call's bound function when {@code e} is a {@code q4_linear} call, else null. */
  static Q4LinearScalar call(Expression e) {
    return e instanceof StaticInvoke s
            && s.scalarFunction().isDefined()
            && s.scalarFunction().get() instanceof Q4LinearScalar f
        ? f
        : null;
  }

  /** The constant model name of call {@code e}, or null when it is not a constant. */
  static String constantModel(StaticInvoke e) {
    Expression model = e.arguments().apply(0);
    if (!model.foldable()) {
      return null;
    }
    Object v = model.eval(null);
    return v instanceof UTF8String s ? s.toString() : null;
  }

  private static void checkModels(LogicalPlan plan) {
    for (Expression e : CollectionConverters.asJava(plan.expressions())) {
      checkModels(e);
    }
    for (LogicalPlan child : CollectionConverters.asJava(plan.children())) {
      checkModels(child);
    }
  }

  private static void checkModels(Expression e) {
    Q4LinearScalar f = call(e);
    if (f != null) {
      StaticInvoke s = (StaticInvoke) e;
      String model = constantModel(s);
      if (model != null) {
        try {
          Q4Models.get(model);
        } catch (IllegalArgumentException unknown) {
          throw undeclared(
              QueryCompilationErrors.functionCannotProcessInputError(
                  new Q4LinearFunction(f.name()),
                  s.arguments(),
                  new UnsupportedOperationException(unknown.getMessage())));
        }
      }
    }
    for (Expression child : CollectionConverters.asJava(e.children())) {
      checkModels(child);
    }
  }

  /**
   * Throws Spark's {@code AnalysisException} (a checked exception to javac, which Scala code throws
   * undeclared) from the Scala callbacks above, whose signatures declare none.
   */
  static RuntimeException undeclared(Throwable t) {
    return Q4SqlExtensions.<RuntimeException>sneaky(t);
  }

  @SuppressWarnings("unchecked")
  private static <T extends Throwable> RuntimeException sneaky(Throwable t) throws T {
    throw (T) t;
  }
}
