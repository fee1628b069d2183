package io.q4spark.spark.arrow;

import io.q4spark.spark.model.LoadedModel;
import io.q4spark.spark.plugin.Q4Executor;
import java.util.Iterator;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.Function2;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.util.TaskCompletionListener;

/**
 * The task side of {@code Q4.apply}: takes the executor's materialised model (materialising it on
 * the executor's first use) and runs it over the partition in batches; the batch memory and the
 * model use are released when the task completes.
 */
public final class ModelPartitionFunction
    implements Function2<Integer, Iterator<InternalRow>, Iterator<InternalRow>> {
  private static final long serialVersionUID = 1L;

  private final BatchPlan plan;

  public ModelPartitionFunction(BatchPlan plan) {
    this.plan = plan;
  }

  @Override
  public Iterator<InternalRow> call(Integer partition, Iterator<InternalRow> rows) {
    Q4Executor executor = Q4Executor.current();
    LoadedModel model = executor.models().acquire(plan.model());
    BatchedModelIterator it;
    try {
      it =
          new BatchedModelIterator(
              plan,
              partition,
              rows,
              model,
              executor.metrics(),
              executor::withDevice,
              executor.allocator());
    } catch (RuntimeException e) {
      model.release();
      throw e;
    }
    TaskContext task = TaskContext.get();
    if (task != null) {
      task.addTaskCompletionListener(
          (TaskCompletionListener)
              c -> {
                try {
                  it.close();
                } finally {
                  model.release();
                }
              });
    }
    return it;
  }
}
