package io.q4spark.spark.arrow;

import io.q4spark.kernels.Float16;
import io.q4spark.spark.conf.BadRowPolicy;
import io.q4spark.spark.conf.OutputFormat;
import io.q4spark.spark.conf.Q4Conf;
import io.q4spark.spark.model.LoadedModel;
import io.q4spark.spark.plugin.Q4Metrics;
import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.function.Consumer;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.GenericInternalRow;
import org.apache.spark.sql.catalyst.expressions.JoinedRow;
import org.apache.spark.sql.catalyst.expressions.UnsafeArrayData;
import org.apache.spark.unsafe.Platform;

/**
 * Runs a model over one partition in batches: reads up to {@code batchRows} input rows, writes the
 * activations of the valid ones into an {@link ActivationBatch}, runs the layer stack once for the
 * batch, and returns each input row with the output appended. A null input gives a null output; a
 * row of the wrong length (or with a null element) fails the task naming its position, or gives a
 * null output under {@code spark.q4.onBadRow=null}; the other rows of the batch are kept either
 * way.
 */
public final class BatchedModelIterator implements Iterator<InternalRow>, AutoCloseable {
  private final BatchPlan plan;
  private final int partition;
  private final Iterator<InternalRow> input;
  private final LoadedModel model;
  private final Q4Metrics metrics;
  private final Consumer<Runnable> device;
  private final ActivationBatch batch;
  private final int k;
  private final int n;

  /** The batch's input rows (copied: upstream operators reuse their row objects). */
  private final InternalRow[] rows;

  /** Per buffered row: its row in {@link #batch}, or -1 for a null output. */
  private final int[] slot;

  private float[] x;
  private float[] out;
  private int buffered;
  private int next;
  private long rowIndex;

  /**
   * @param device runs the kernels holding the executor's device slot, if it has one
   */
  public BatchedModelIterator(
      BatchPlan plan,
      int partition,
      Iterator<InternalRow> input,
      LoadedModel model,
      Q4Metrics metrics,
      Consumer<Runnable> device,
      BufferAllocator allocator) {
    this.plan = plan;
    this.partition = partition;
    this.input = input;
    this.model = model;
    this.metrics = metrics;
    this.device = device;
    this.k = model.k();
    this.n = model.n();
    this.batch = new ActivationBatch(allocator, k, plan.batchRows());
    this.rows = new InternalRow[plan.batchRows()];
    this.slot = new int[plan.batchRows()];
  }

  @Override
  public boolean hasNext() {
    if (next < buffered) {
      return true;
    }
    fill();
    return buffered > 0;
  }

  @Override
  public InternalRow next() {
    if (!hasNext()) {
      throw new NoSuchElementException();
    }
    int i = next++;
    InternalRow row = rows[i];
    rows[i] = null;
    return new JoinedRow(row, new GenericInternalRow(new Object[] {output(slot[i])}));
  }

  private Object output(int s) {
    if (s < 0) {
      return null;
    }
    if (plan.outputFormat() == OutputFormat.FP16) {
      byte[] b = new byte[n * 2];
      for (int j = 0; j < n; j++) {
        short h = Float16.fromFloat(out[s * n + j]);
        b[2 * j] = (byte) h;
        b[2 * j + 1] = (byte) (h >>> 8);
      }
      return b;
    }
    UnsafeArrayData a = UnsafeArrayData.createFreshArray(n, Float.BYTES);
    Platform.copyMemory(
        out,
        Platform.FLOAT_ARRAY_OFFSET + (long) s * n * Float.BYTES,
        a.getBaseObject(),
        a.getBaseOffset() + UnsafeArrayData.calculateHeaderPortionInBytes(n),
        (long) n * Float.BYTES);
    return a;
  }

  /** Reads the next batch of input rows and runs the model on the valid ones. */
  private void fill() {
    buffered = 0;
    next = 0;
    batch.clear();
    int ordinal = plan.input().ordinal();
    while (buffered < rows.length && input.hasNext()) {
      InternalRow row = input.next().copy();
      long index = rowIndex++;
      int s = -1;
      if (!row.isNullAt(ordinal)) {
        Object value = plan.input().get(row);
        String bad = plan.input().problem(value, k);
        if (bad == null) {
          s = batch.rows();
          plan.input().append(value, batch);
        } else if (plan.onBadRow() == BadRowPolicy.FAIL) {
          throw new IllegalArgumentException(
              plan.where()
                  + ": row "
                  + index
                  + " of partition "
                  + partition
                  + " "
                  + bad
                  + "; set "
                  + Q4Conf.ON_BAD_ROW.key()
                  + "=null to give such rows a null output");
        }
      }
      rows[buffered] = row;
      slot[buffered] = s;
      buffered++;
    }
    int m = batch.rows();
    if (m == 0) {
      return;
    }
    batch.seal();
    long start = System.nanoTime();
    if (model.readsNativeMemory(m)) {
      // GPU and oneDNN: the batch is read from Arrow memory, never through the Java heap.
      device.accept(() -> out = model.forward(batch.segment(), m));
    } else {
      // Java kernels: one bulk copy into an array reused across batches.
      if (x == null || x.length != m * k) {
        x = new float[m * k];
      }
      batch.copyTo(x);
      device.accept(() -> out = model.forward(x, m));
    }
    metrics.batch(model, m, System.nanoTime() - start);
  }

  @Override
  public void close() {
    batch.close();
  }
}
