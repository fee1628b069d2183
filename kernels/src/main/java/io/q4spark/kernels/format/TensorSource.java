package io.q4spark.kernels.format;

import java.util.Set;

/**
 * Named tensors read from a checkpoint: one safetensors file or a directory of them. Views handed
 * out point into memory the source owns; they must not be used after {@link #close()}.
 */
public interface TensorSource extends AutoCloseable {
  /** Whether a tensor of this name exists. */
  boolean contains(String name);

  /**
   * The tensor of this name.
   *
   * @throws SafetensorsException naming the tensor and {@link #describe()} if there is none
   */
  TensorView tensor(String name);

  /** Every tensor name, sorted; the set cannot be modified. */
  Set<String> names();

  /** The file or directory this source reads, for messages. */
  String describe();

  /** Releases the mapped files; views handed out before become unusable. */
  @Override
  void close();
}
