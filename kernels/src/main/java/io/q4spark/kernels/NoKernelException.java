package io.q4spark.kernels;

import java.util.List;

/** No kernel can implement a layer; the message lists every candidate's reason. */
public final class NoKernelException extends RuntimeException {
  private final List<KernelSelection.Outcome> outcomes;

  public NoKernelException(String message, List<KernelSelection.Outcome> outcomes) {
    super(message);
    this.outcomes = List.copyOf(outcomes);
  }

  public List<KernelSelection.Outcome> outcomes() {
    return outcomes;
  }
}
