package io.q4spark.kernels.format;

/**
 * A checkpoint (or one of its files) is not what its format requires. The message names the file,
 * the layer or tensor, what was expected and what was found.
 */
public class CheckpointException extends RuntimeException {
  public CheckpointException(String message) {
    super(message);
  }

  public CheckpointException(String message, Throwable cause) {
    super(message, cause);
  }
}
