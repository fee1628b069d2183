package io.q4spark.kernels.format;

/**
 * A safetensors file, or a checkpoint made of them, breaks the format or does not hold what a
 * caller asked for. The message names the file (or directory) and the tensor, and says what was
 * expected and what was found.
 */
public final class SafetensorsException extends CheckpointException {
  public SafetensorsException(String message) {
    super(message);
  }

  public SafetensorsException(String message, Throwable cause) {
    super(message, cause);
  }
}
