package io.q4spark.kernels;

import java.util.List;
import java.util.stream.Collectors;

/**
 * The outcome of selection for one layer: the chosen kernel and what every candidate said, in
 * priority order. The same object is logged, printed by {@code q4spark doctor} and shown in
 * EXPLAIN.
 */
public record KernelSelection(
    LinearLayerConfig config, LinearKernel chosen, List<Outcome> outcomes) {

  /** What one candidate said: accepted, or the reason it was passed over. */
  public record Outcome(String kernel, boolean accepted, String reason) {
    @Override
    public String toString() {
      return accepted ? kernel + ": chosen" : kernel + ": " + reason;
    }
  }

  public KernelSelection {
    outcomes = List.copyOf(outcomes);
  }

  /** The rejections only. */
  public List<Outcome> rejections() {
    return outcomes.stream().filter(o -> !o.accepted()).toList();
  }

  /** A header line for the layer, then one line per candidate. */
  public String describe() {
    return "layer "
        + config.describe()
        + ": using "
        + chosen.name()
        + "\n"
        + outcomes.stream().map(o -> "  " + o).collect(Collectors.joining("\n"));
  }
}
