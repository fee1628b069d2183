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
import org.apache.spark.sql.catalyst.expressions.And;
import org.apache.spark.sql.catalyst.expressions.Attribute;
import org.apache.spark.sql.catalyst.expressions.AttributeReference;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.NamedExpression;
import org.apache.spark.sql.catalyst.expressions.objects.StaticInvoke;
import org.apache.spark.sql.catalyst.plans.logical.Filter;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import org.apache.spark.sql.catalyst.plans.logical.Project;
import org.apache.spark.sql.execution.FilterExec;
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
 * A call whose input holds another call is lifted after it, above it. A filter's calls are lifted
 * the same way ({@code WHERE q4_linear('clf', features)[0] > 0.9}: see {@link #liftFilter}). Calls
 * elsewhere (aggregates, join conditions, sort keys, a non-constant model name) are left to the
 * row-at-a-time function. The model is resolved and {@code spark.q4.batch.rows} / {@code
 * spark.q4.onBadRow} are read from the session when the query is planned.
 */
public final class Q4BatchEvalStrategy extends SparkStrategy {
  private final SparkSession session;

  public Q4BatchEvalStrategy(SparkSession session) {
    this.session = session;
  }

  @Override
  public Seq<SparkPlan> apply(LogicalPlan plan) {
    if (plan instanceof Project project) {
      List<Expression> list = new ArrayList<>();
      CollectionConverters.asJava(project.projectList()).forEach(e -> list.add((Expression) e));
      // Spark plans a projection and the filter under it together, so a filter's calls are
      // lifted here too.
      SparkPlan below =
          project.child() instanceof Filter f && hasCalls(f.condition()) ? liftFilter(f) : null;
      if (below == null && liftable(list).isEmpty()) {
        return seq(List.of());
      }
      Lifted lifted =
          below == null
              ? lift(list, planLater(project.child()), project.child().output())
              : lift(list, below, project.child().output());
      List<NamedExpression> named = new ArrayList<>();
      lifted.expressions().forEach(e -> named.add((NamedExpression) e));
      return seq(List.of(new ProjectExec(seq(named), lifted.plan())));
    }
    if (plan instanceof Filter filter && hasCalls(filter.condition())) {
      List<NamedExpression> columns =
          new ArrayList<>(CollectionConverters.asJava(filter.child().output()));
      return seq(List.of(new ProjectExec(seq(columns), liftFilter(filter))));
    }
    return seq(List.of());
  }

  private static boolean hasCalls(Expression e) {
    return !liftable(List.of(e)).isEmpty();
  }

  /**
   * A filter whose condition calls a model: the conjuncts without calls stay a filter below (where
   * Spark can still push them into the scan), the others are evaluated over the lifted calls'
   * results. The plan's output is the child's columns and those results. A condition with a
   * non-deterministic part is kept whole, as Spark does for Python UDFs.
   */
  private SparkPlan liftFilter(Filter filter) {
    List<Expression> conjuncts = new ArrayList<>();
    splitConjuncts(filter.condition(), conjuncts);
    boolean split = conjuncts.stream().allMatch(Expression::deterministic);
    List<Expression> withCalls = new ArrayList<>();
    List<Expression> without = new ArrayList<>();
    for (Expression c : split ? conjuncts : List.of(filter.condition())) {
      (hasCalls(c) ? withCalls : without).add(c);
    }
    LogicalPlan below =
        without.isEmpty() ? filter.child() : new Filter(and(without), filter.child());
    Lifted lifted = lift(List.of(and(withCalls)), planLater(below), below.output());
    return new FilterExec(lifted.expressions().getFirst(), lifted.plan());
  }

  private static void splitConjuncts(Expression e, List<Expression> out) {
    if (e instanceof And and) {
      splitConjuncts(and.left(), out);
      splitConjuncts(and.right(), out);
    } else {
      out.add(e);
    }
  }

  private static Expression and(List<Expression> conjuncts) {
    Expression e = conjuncts.getFirst();
    for (int i = 1; i < conjuncts.size(); i++) {
      e = new And(e, conjuncts.get(i));
    }
    return e;
  }

  /**
   * {@code expressions} rewritten over the results of their calls, and the plan that computes those
   * results over {@code child}.
   */
  private record Lifted(List<Expression> expressions, SparkPlan plan) {}

  /**
   * Puts one {@code Q4BatchEval} above {@code current} (whose output starts with {@code columns})
   * per distinct liftable call in {@code expressions}, rounds at a time (a call whose input holds
   * another call goes in the round after that call's), each call replaced by its result attribute.
   */
  private Lifted lift(List<Expression> expressions, SparkPlan current, Seq<Attribute> columns) {
    List<Expression> list = new ArrayList<>(expressions);
    Q4Settings settings = Q4Settings.from(CollectionConverters.asJava(session.conf().getAll()));
    List<Attribute> output = new ArrayList<>(CollectionConverters.asJava(columns));
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
      list.replaceAll(e -> replace(e, results));
    }
    return new Lifted(list, current);
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
  private static Map<Expression, StaticInvoke> liftable(List<Expression> list) {
    Map<Expression, StaticInvoke> calls = new LinkedHashMap<>();
    list.forEach(e -> collect(e, calls));
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
