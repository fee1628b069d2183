package io.q4spark.kernels;

/**
 * A kernel's answer to "can you implement this layer?": accepted, or rejected with the reason
 * (vLLM's {@code (bool, str | None)} pair).
 */
public record Acceptance(boolean accepted, String reason) {
  private static final Acceptance ACCEPTED = new Acceptance(true, null);

  public static Acceptance accept() {
    return ACCEPTED;
  }

  public static Acceptance reject(String reason) {
    return new Acceptance(false, reason);
  }
}
