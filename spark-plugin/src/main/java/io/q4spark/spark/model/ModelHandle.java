package io.q4spark.spark.model;

import java.io.Serializable;
import java.util.List;
import org.apache.spark.broadcast.Broadcast;

/**
 * What a task needs to reach a registered model: its name, shapes and the broadcast of its bytes.
 * Small and serialisable: tasks capture this, never the weights.
 *
 * @param name the registered name
 * @param k inputs of the first layer
 * @param n outputs of the last layer
 * @param layers one line per layer ({@link ModelLayer#describe})
 * @param weights the broadcast of the {@link ModelCodec} bytes
 */
public record ModelHandle(
    String name, int k, int n, List<String> layers, Broadcast<ChunkedBytes> weights)
    implements Serializable {
  private static final long serialVersionUID = 1L;

  public ModelHandle {
    layers = List.copyOf(layers);
  }

  /** The broadcast's id: the key of the executors' model cache. */
  public long broadcastId() {
    return weights.id();
  }
}
