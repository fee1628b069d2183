package io.q4spark.spark.sql;

import io.q4spark.spark.conf.Q4Settings;
import io.q4spark.spark.model.ModelHandle;
import io.q4spark.spark.model.Q4Models;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.catalyst.expressions.Alias;
import org.apache.spark.sql.catalyst.expressions.Attribute;
import org.apache.spark.sql.catalyst.expressions.AttributeReference;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.NamedExpression;
import org.apache.spark.sql.catalyst.expressions.objects.StaticInvoke;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import org.apache.spark.sql.catalyst.plans.logical.Project;
import org.apache.spark.sql.execution.ProjectExec;
import org.apache.spark.sql.execution.SparkPlan;
import org.apache.spark.sql.execution.SparkStrategy;
import org.apache.spark.sql.types.Metadata;
import scala.Option;
import scala.collection.immutable.Seq;
import scala.jdk.javaapi.CollectionConverters;

/**
 * Lifts {@code q4_linear} calls out of a projection into batched operators, the way Spark lifts
 * Python UDFs into its Arrow evaluation: a {@code Project} whose list holds calls with a constant
 * model name is planned as
 *
 * <pre>
 *   Project [list, each call replaced by its result attribute]
 *   +- Q4BatchEval [q4_linear(model, input)]      (one per distinct call)
 *      +- Project [child columns, input AS ...]   (only when the input is not a column)
 *         +- child
 * </pre>
 *
 * A call whose input holds another call is lifted after it, above it. Calls elsewhere (filters,
 * aggregates, join conditions, a non-constant model name) are left to the row-at-a-time function.
 * The model is resolved and {@code spark.q4.batch.rows} / {@code spark.q4.onBadRow} are read from
 * the session when the query is planned.
 */
public final class Q4BatchEvalStrategy extends SparkStrategy {
  private final SparkSession session;

  public Q4BatchEvalStrategy(SparkSession session) {
    this.session = session;
  }

  @Override
  public Seq<SparkPlan> apply(LogicalPlan plan) {
    if (!(plan instanceof Project project)) {
      return seq(List.of());
    }
    List<NamedExpression> list =
        new ArrayList<>(CollectionConverters.asJava(project.projectList()));
    if (liftable(list).isEmpty()) {
      return seq(List.of());
    }
    Q4Settings settings = Q4Settings.from(CollectionConverters.asJava(session.conf().getAll()));
    SparkPlan current = planLater(project.child());
    List<Attribute> output = new ArrayList<>(CollectionConverters.asJava(project.child().output()));
    for (Map<Expression, StaticInvoke> calls = liftable(list);
        !calls.isEmpty();
        calls = liftable(list)) {
      Map<Expression, Attribute> results = new HashMap<>();
      for (Map.Entry<Expression, StaticInvoke> call : calls.entrySet()) {
        ModelHandle model = Q4Models.get(Q4SqlExtensions.constantModel(call.getValue()));
        Expression arg = call.getValue().arguments().apply(1);
        Attribute input = column(arg, output);
        if (input == null) {
          Alias alias =
              new Alias(
                  arg,
                  arg.sql(),
                  NamedExpression.newExprId(),
                  seq(List.of()),
                  Option.empty(),
                  seq(List.of()));
          List<NamedExpression> withInput = new ArrayList<>(output);
          withInput.add(alias);
          current = new ProjectExec(seq(withInput), current);
          input = alias.toAttribute();
          output.add(input);
        }
        Attribute result =
            new AttributeReference(
                Q4LinearFunction.NAME,
                Q4LinearScalar.RESULT,
                true,
                Metadata.empty(),
                NamedExpression.newExprId(),
                seq(List.of()));
        current =
            new Q4BatchEvalExec(
                model, input, result, settings.batchRows(), settings.onBadRow(), current);
        output.add(result);
        results.put(call.getKey(), result);
      }
      list.replaceAll(e -> (NamedExpression) replace((Expression) e, results));
    }
    return seq(List.of(new ProjectExec(seq(list), current)));
  }

  /** {@code arg} when it is one of {@code output}'s columns, else null. */
  private static Attribute column(Expression arg, List<Attribute> output) {
    if (arg instanceof Attribute a) {
      for (Attribute o : output) {
        if (o.exprId().equals(a.exprId())) {
          return o;
        }
      }
    }
    return null;
  }

  /**
   * The calls in {@code list} that can run now, by canonical form (equal calls run once): a
   * constant model name and no call in the input.
   */
  private static Map<Expression, StaticInvoke> liftable(List<NamedExpression> list) {
    Map<Expression, StaticInvoke> calls = new LinkedHashMap<>();
    list.forEach(e -> collect((Expression) e, calls));
    return calls;
  }

  private static void collect(Expression e, Map<Expression, StaticInvoke> calls) {
    if (Q4SqlExtensions.call(e) != null
        && e instanceof StaticInvoke s
        && Q4SqlExtensions.constantModel(s) != null
        && !containsCall(s.arguments().apply(1))) {
      calls.putIfAbsent(e.canonicalized(), s);
      return;
    }
    CollectionConverters.asJava(e.children()).forEach(c -> collect(c, calls));
  }

  private static boolean containsCall(Expression e) {
    return Q4SqlExtensions.call(e) != null
        || CollectionConverters.asJava(e.children()).stream()
            .anyMatch(Q4BatchEvalStrategy::containsCall);
  }

  /** {@code e} with every call in {@code results} replaced by its result attribute. */
  private static Expression replace(Expression e, Map<Expression, Attribute> results) {
    Attribute r = results.get(e.canonicalized());
    if (r != null) {
      return r;
    }
    List<Expression> children = CollectionConverters.asJava(e.children());
    List<Expression> replaced = new ArrayList<>(children.size());
    boolean changed = false;
    for (Expression c : children) {
      Expression n = replace(c, results);
      changed |= n != c;
      replaced.add(n);
    }
    return changed ? e.withNewChildren(seq(replaced)) : e;
  }

  private static <T> Seq<T> seq(List<T> list) {
    return CollectionConverters.asScala(list).toList();
  }
}
