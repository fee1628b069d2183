package io.q4spark.kernels;

import java.util.List;
import java.util.stream.Collectors;

/**
 * The outcome of selection for one layer: the chosen kernel, the kernel that takes calls of many
 * rows where a later one is faster there ({@link LinearKernel#fasterFromRows}; else null), and what
 * every candidate asked said, in priority order. The same object is logged, printed by {@code
 * q4spark doctor} and shown in EXPLAIN.
 *
 * @param manyRows the kernel for calls of {@code manyRowsFrom} rows or more, or null
 * @param manyRowsFrom the row count from which {@code manyRows} runs (0 without one)
 */
public record KernelSelection(
    LinearLayerConfig config,
    LinearKernel chosen,
    LinearKernel manyRows,
    int manyRowsFrom,
    List<Outcome> outcomes) {

  /** What one candidate said: accepted, or the reason it was passed over. */
  public record Outcome(String kernel, boolean accepted, String reason) {
    @Override
    public String toString() {
      return accepted
          ? kernel + ": " + (reason == null ? "chosen" : reason)
          : kernel + ": " + reason;
    }
  }

  public KernelSelection {
    outcomes = List.copyOf(outcomes);
  }

  /** A selection of one kernel for every call. */
  public KernelSelection(LinearLayerConfig config, LinearKernel chosen, List<Outcome> outcomes) {
    this(config, chosen, null, 0, outcomes);
  }

  /** The kernel names: {@code A}, or {@code A, B from R rows}. */
  public String kernels() {
    return manyRows == null
        ? chosen.name()
        : chosen.name() + ", " + manyRows.name() + " from " + manyRowsFrom + " rows";
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
        + kernels()
        + "\n"
        + outcomes.stream().map(o -> "  " + o).collect(Collectors.joining("\n"));
  }
}
