package io.q4spark.spark.model;

import java.io.Serializable;
import java.util.List;
import java.util.Map;
import org.apache.spark.broadcast.Broadcast;

/**
 * What a task needs to reach a registered model: its name, shapes and either the broadcast of its
 * bytes or, for a model each executor loads itself, the checkpoint's location. Small and
 * serialisable: tasks capture this, never the weights.
 *
 * @param name the registered name
 * @param k inputs of the first layer
 * @param n outputs of the last layer
 * @param layers one line per layer ({@link ModelLayer#describe})
 * @param weights the broadcast of the {@link ModelCodec} bytes, or null when executors load the
 *     checkpoint
 * @param checkpoint the checkpoint directory executors load (memory-mapped), or null
 * @param options the checkpoint options ({@link ModelCheckpoint}) executors load it with
 * @param localId the cache key of an executor-loaded model: negative, unique per registration
 */
public record ModelHandle(
    String name,
    int k,
    int n,
    List<String> layers,
    Broadcast<ChunkedBytes> weights,
    String checkpoint,
    Map<String, String> options,
    long localId)
    implements Serializable {
  private static final long serialVersionUID = 1L;

  public ModelHandle {
    layers = List.copyOf(layers);
    options = options == null ? Map.of() : Map.copyOf(options);
  }

  /** A broadcast model. */
  public ModelHandle(
      String name, int k, int n, List<String> layers, Broadcast<ChunkedBytes> weights) {
    this(name, k, n, layers, weights, null, Map.of(), 0);
  }

  /** Whether executors load the checkpoint themselves instead of reading a broadcast. */
  public boolean loadedByExecutors() {
    return weights == null;
  }

  /** The key of the executors' model cache: the broadcast's id, or the negative local id. */
  public long broadcastId() {
    return weights != null ? weights.id() : localId;
  }
}
