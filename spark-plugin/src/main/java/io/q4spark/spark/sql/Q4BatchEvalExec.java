package io.q4spark.spark.sql;

import io.q4spark.spark.arrow.BatchPlan;
import io.q4spark.spark.arrow.InputColumn;
import io.q4spark.spark.arrow.ModelPartitionFunction;
import io.q4spark.spark.conf.BadRowPolicy;
import io.q4spark.spark.conf.OutputFormat;
import io.q4spark.spark.model.ModelHandle;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Objects;
import org.apache.spark.api.java.function.Function2;
import org.apache.spark.rdd.RDD;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.Attribute;
import org.apache.spark.sql.catalyst.expressions.AttributeSet;
import org.apache.spark.sql.catalyst.expressions.SortOrder;
import org.apache.spark.sql.catalyst.expressions.UnsafeProjection;
import org.apache.spark.sql.catalyst.plans.physical.Partitioning;
import org.apache.spark.sql.execution.SparkPlan;
import org.apache.spark.sql.types.DataType;
import scala.collection.immutable.IndexedSeq;
import scala.collection.immutable.Seq;
import scala.jdk.javaapi.CollectionConverters;

/**
 * The batched physical operator for one {@code q4_linear(model, input)} call: each partition of the
 * child runs through the Dataset path's machinery ({@link ModelPartitionFunction}: rows copied into
 * Arrow batches of {@code spark.q4.batch.rows}, the layer stack run once per batch, the model taken
 * from the executor's cache), and every child row comes out with the call's result appended as
 * attribute {@code result}. Rows keep their order and partitioning. Planned by {@link
 * Q4BatchEvalStrategy}; EXPLAIN shows it as {@code Q4BatchEval [q4_linear(model, input)]}.
 *
 * <p>The constructor's parameters are the node's product elements, in order, as Spark's tree
 * copying expects of a case class.
 */
public final class Q4BatchEvalExec extends SparkPlan {
  private static final long serialVersionUID = 1L;

  private final ModelHandle model;
  private final Attribute input;
  private final Attribute result;
  private final int batchRows;
  private final BadRowPolicy onBadRow;
  private final SparkPlan child;

  /**
   * @param model the registered model, resolved on the driver when the query was planned
   * @param input the child's attribute holding the features ({@code array<float|double>})
   * @param result the appended attribute ({@code array<float>})
   * @param batchRows rows per batch ({@code spark.q4.batch.rows} when planned)
   * @param onBadRow what a row of the wrong length does ({@code spark.q4.onBadRow} when planned)
   */
  public Q4BatchEvalExec(
      ModelHandle model,
      Attribute input,
      Attribute result,
      int batchRows,
      BadRowPolicy onBadRow,
      SparkPlan child) {
    this.model = model;
    this.input = input;
    this.result = result;
    this.batchRows = batchRows;
    this.onBadRow = onBadRow;
    this.child = child;
  }

  public SparkPlan child() {
    return child;
  }

  public Attribute result() {
    return result;
  }

  /** The call, for messages and EXPLAIN. */
  public String call() {
    return Q4LinearFunction.NAME + "(" + model.name() + ", " + input + ")";
  }

  @Override
  public Seq<Attribute> output() {
    List<Attribute> out = new ArrayList<>(CollectionConverters.asJava(child.output()));
    out.add(result);
    return CollectionConverters.asScala(out).toList();
  }

  @Override
  public AttributeSet producedAttributes() {
    return AttributeSet.apply(result);
  }

  @Override
  public Seq<SparkPlan> children() {
    return CollectionConverters.asScala(List.of(child)).toList();
  }

  @Override
  public Partitioning outputPartitioning() {
    return child.outputPartitioning();
  }

  @Override
  public Seq<SortOrder> outputOrdering() {
    return child.outputOrdering();
  }

  @Override
  public SparkPlan withNewChildrenInternal(IndexedSeq<SparkPlan> newChildren) {
    return new Q4BatchEvalExec(model, input, result, batchRows, onBadRow, newChildren.apply(0));
  }

  @Override
  public RDD<InternalRow> doExecute() {
    List<Attribute> in = CollectionConverters.asJava(child.output());
    int ordinal = -1;
    for (int i = 0; i < in.size(); i++) {
      if (in.get(i).exprId().equals(input.exprId())) {
        ordinal = i;
      }
    }
    if (ordinal < 0) {
      throw new IllegalStateException(
          call() + ": the input " + input + " is not among the child's columns " + in);
    }
    BatchPlan plan =
        new BatchPlan(
            Q4LinearFunction.NAME + "(model '" + model.name() + "', " + input.name() + ")",
            model,
            InputColumn.of(input.name(), ordinal, input.dataType()),
            batchRows,
            onBadRow,
            OutputFormat.FLOAT);
    List<Attribute> out = CollectionConverters.asJava(output());
    DataType[] types = new DataType[out.size()];
    for (int i = 0; i < types.length; i++) {
      types[i] = out.get(i).dataType();
    }
    return child
        .execute()
        .toJavaRDD()
        .mapPartitionsWithIndex(new UnsafeOutput(plan, types), true)
        .rdd();
  }

  /**
   * The task side: the Dataset path's batches, each output row made an {@code UnsafeRow} (what
   * Spark's operators above, an exchange among them, expect).
   */
  private record UnsafeOutput(BatchPlan plan, DataType[] types)
      implements Function2<Integer, Iterator<InternalRow>, Iterator<InternalRow>> {
    private static final long serialVersionUID = 1L;

    @Override
    public Iterator<InternalRow> call(Integer partition, Iterator<InternalRow> rows) {
      Iterator<InternalRow> joined = new ModelPartitionFunction(plan).call(partition, rows);
      UnsafeProjection unsafe = UnsafeProjection.create(types);
      return new Iterator<>() {
        @Override
        public boolean hasNext() {
          return joined.hasNext();
        }

        @Override
        public InternalRow next() {
          return unsafe.apply(joined.next());
        }
      };
    }
  }

  @Override
  public String simpleString(int maxFields) {
    return nodeName() + " [" + call() + "], [" + result + "], " + batchRows + " rows per batch";
  }

  @Override
  public int productArity() {
    return 6;
  }

  @Override
  public Object productElement(int n) {
    return switch (n) {
      case 0 -> model;
      case 1 -> input;
      case 2 -> result;
      case 3 -> batchRows;
      case 4 -> onBadRow;
      case 5 -> child;
      default -> throw new IndexOutOfBoundsException("Q4BatchEvalExec has 6 elements, not " + n);
    };
  }

  @Override
  public boolean canEqual(Object that) {
    return that instanceof Q4BatchEvalExec;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Q4BatchEvalExec e
        && model.broadcastId() == e.model.broadcastId()
        && input.equals(e.input)
        && result.equals(e.result)
        && batchRows == e.batchRows
        && onBadRow == e.onBadRow
        && child.equals(e.child);
  }

  @Override
  public int hashCode() {
    return Objects.hash(model.broadcastId(), input, result, batchRows, onBadRow, child);
  }
}
