package io.q4spark.spark.sql;

import io.q4spark.spark.arrow.InputColumn;
import io.q4spark.spark.conf.BadRowPolicy;
import io.q4spark.spark.conf.Q4Conf;
import io.q4spark.spark.model.LoadedModel;
import io.q4spark.spark.model.ModelHandle;
import io.q4spark.spark.plugin.Q4Executor;
import java.util.HashMap;
import java.util.Map;
import java.util.Objects;
import org.apache.spark.TaskContext;
import org.apache.spark.sql.catalyst.expressions.UnsafeArrayData;
import org.apache.spark.sql.catalyst.util.ArrayData;
import org.apache.spark.sql.internal.SQLConf;
import org.apache.spark.unsafe.types.UTF8String;
import org.apache.spark.util.TaskCompletionListener;

/**
 * {@code q4_linear} one row at a time: the path of calls that were not lifted into the batched
 * operator (a call outside a projection, a model name that is not a constant).
 *
 * <p>The model comes from the executor's {@link io.q4spark.spark.model.ModelCache}, the one {@code
 * Q4.apply} uses: a task asks the driver for the handle of each model name once, takes the
 * materialised model once and releases it when the task completes. {@code spark.q4.onBadRow} is the
 * session's (Spark hands the session's {@code spark.*} settings to tasks as local properties).
 */
final class Q4LinearRows {
  private Q4LinearRows() {}

  /** What the task running on this thread resolved, by model name. */
  private static final ThreadLocal<TaskModels> TASK = new ThreadLocal<>();

  /**
   * The model named {@code model} applied to one row; null when either argument is null, or for a
   * bad row under {@code spark.q4.onBadRow=null}.
   *
   * @param containsNull whether the features' type admits null elements (each row is then checked)
   * @throws IllegalArgumentException for a row of the wrong length (naming it and K) or an unknown
   *     model (naming the registered ones)
   */
  static ArrayData apply(
      UTF8String model, Object features, InputColumn.Kind kind, boolean containsNull) {
    if (model == null || features == null) {
      return null;
    }
    TaskContext task = TaskContext.get();
    if (task == null && !Q4Executor.isRunning()) {
      throw new IllegalStateException(
          Q4LinearFunction.NAME
              + "(model '"
              + model
              + "') was evaluated outside a task in a JVM without q4spark's executor plugin (the"
              + " driver of a cluster: Spark's optimizer evaluates calls over in-memory local"
              + " relations, and calls of constants, there); repartition such data or read it"
              + " from storage, or start Spark with spark.plugins="
              + Q4Conf.PLUGIN_CLASS);
    }
    Q4Executor executor = Q4Executor.current();
    if (task == null) {
      // Outside a task (the optimizer folding a constant call on the driver): no task to hold the
      // model for, so take and release it around the one row.
      String name = model.toString();
      BadRowPolicy policy =
          policy(SQLConf.get().getConfString(Q4Conf.ON_BAD_ROW.key(), null), executor);
      LoadedModel m = executor.models().acquire(executor.lookupModel(name));
      try {
        return compute(executor, m, name, policy, features, kind, containsNull);
      } finally {
        m.release();
      }
    }
    TaskModels t = TASK.get();
    if (t == null || t.attempt != task.taskAttemptId()) {
      t = new TaskModels(task, executor);
      TASK.set(t);
    }
    Resolved r = t.resolve(model);
    return compute(executor, r.model, r.name, t.policy, features, kind, containsNull);
  }

  private static BadRowPolicy policy(String value, Q4Executor executor) {
    return value == null
        ? executor.settings().onBadRow()
        : Q4Conf.ON_BAD_ROW.get(Map.of(Q4Conf.ON_BAD_ROW.key(), value));
  }

  private static ArrayData compute(
      Q4Executor executor,
      LoadedModel model,
      String name,
      BadRowPolicy policy,
      Object features,
      InputColumn.Kind kind,
      boolean containsNull) {
    int k = model.k();
    InputColumn column = new InputColumn(name, 0, kind, containsNull);
    String bad = column.problem(features, k);
    if (bad != null) {
      if (policy == BadRowPolicy.NULL) {
        return null;
      }
      throw new IllegalArgumentException(
          Q4LinearFunction.NAME
              + "(model '"
              + name
              + "'): a row "
              + bad
              + "; set "
              + Q4Conf.ON_BAD_ROW.key()
              + "=null to give such rows a null output");
    }
    float[] x = column.toFloats(features, k);
    float[][] out = new float[1][];
    long start = System.nanoTime();
    executor.withDevice(() -> out[0] = model.forward(x, 1));
    executor.metrics().batch(model, 1, System.nanoTime() - start);
    return UnsafeArrayData.fromPrimitiveArray(out[0]);
  }

  private record Resolved(String name, LoadedModel model) {}

  /** One task's models by name, released when the task completes. */
  private static final class TaskModels {
    final long attempt;
    final BadRowPolicy policy;
    private final Q4Executor executor;
    private final Map<UTF8String, Resolved> byName = new HashMap<>();

    TaskModels(TaskContext task, Q4Executor executor) {
      this.attempt = task.taskAttemptId();
      this.executor = executor;
      this.policy = policy(task.getLocalProperty(Q4Conf.ON_BAD_ROW.key()), executor);
      task.addTaskCompletionListener((TaskCompletionListener) c -> close());
    }

    Resolved resolve(UTF8String model) {
      Resolved r = byName.get(model);
      if (r == null) {
        String name = model.toString();
        ModelHandle handle = executor.lookupModel(name);
        r = new Resolved(name, executor.models().acquire(handle));
        // The key may be a view into the row's memory: keep a copy.
        byName.put(model.clone(), r);
      }
      return r;
    }

    private void close() {
      if (TASK.get() == this) {
        TASK.remove();
      }
      byName.values().stream()
          .map(Resolved::model)
          .filter(Objects::nonNull)
          .forEach(LoadedModel::release);
      byName.clear();
    }
  }
}
