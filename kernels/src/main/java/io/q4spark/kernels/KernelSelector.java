package io.q4spark.kernels;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Chooses the kernel for a layer, once, in one place (vLLM's {@code choose_mp_linear_kernel}): walk
 * {@link KernelCatalog#PRIORITY} in order, skip the kernels on the deny-list and, when a kernel is
 * forced, every other one; ask each remaining kernel whether it can implement the layer; take the
 * first that can; then, among the kernels whose catalog entry names the chosen one ({@link
 * KernelCatalog.Entry#manyRowsAfter}), the first that can and is faster from some row count on
 * ({@link LinearKernel#fasterFromRows}) takes the calls of that many rows (not when a kernel is
 * forced). Every candidate's outcome is recorded and logged in one line. When none fits, one
 * exception lists every reason; when the forced kernel cannot implement the layer, the exception
 * says so with its reason.
 */
public final class KernelSelector {
  private static final Logger LOG = LoggerFactory.getLogger(KernelSelector.class);

  private KernelSelector() {}

  public static KernelSelection select(LinearLayerConfig config, KernelOptions options) {
    for (String name : options.disabled().keySet()) {
      if (!KernelCatalog.names().contains(name)) {
        throw new IllegalArgumentException(
            "unknown kernel '"
                + name
                + "' in the deny-list (from "
                + options.disabled().get(name)
                + "): expected names from "
                + KernelCatalog.names());
      }
    }
    if (options.forced() != null && !KernelCatalog.names().contains(options.forced())) {
      throw new IllegalArgumentException(
          "unknown kernel '"
              + options.forced()
              + "' forced: expected one of "
              + KernelCatalog.names());
    }

    List<KernelSelection.Outcome> outcomes = new ArrayList<>();
    LinearKernel chosen = null;
    for (KernelCatalog.Entry entry : KernelCatalog.PRIORITY) {
      String reason = null;
      if (chosen != null) {
        break;
      } else if (options.forced() != null && !options.forced().equals(entry.name())) {
        reason = "skipped: " + options.forced() + " is forced";
      } else if (options.disabled().containsKey(entry.name())) {
        reason = entry.name() + " disabled by " + options.disabled().get(entry.name());
      } else {
        try {
          LinearKernel kernel = KernelCatalog.load(entry);
          Acceptance a = kernel.canImplement(config);
          if (a.accepted()) {
            chosen = kernel;
          } else {
            reason = entry.name() + " cannot implement due to: " + a.reason();
          }
        } catch (KernelCatalog.KernelUnavailableException e) {
          reason = e.getMessage();
        }
      }
      outcomes.add(new KernelSelection.Outcome(entry.name(), reason == null, reason));
    }
    LinearKernel manyRows = null;
    int manyRowsFrom = 0;
    if (chosen != null && options.forced() == null) {
      // A later kernel measured to be faster than the chosen one from some row count on takes the
      // calls of that many rows (only kernels whose catalog entry names the chosen one are asked).
      for (KernelCatalog.Entry entry : KernelCatalog.PRIORITY) {
        if (!chosen.name().equals(entry.manyRowsAfter())
            || options.disabled().containsKey(entry.name())) {
          continue;
        }
        try {
          LinearKernel kernel = KernelCatalog.load(entry);
          int from = kernel.canImplement(config).accepted() ? kernel.fasterFromRows(config) : 0;
          if (from > 0) {
            manyRows = kernel;
            manyRowsFrom = from;
            outcomes.add(
                new KernelSelection.Outcome(
                    entry.name(),
                    true,
                    "chosen for calls of "
                        + from
                        + " rows or more (measured faster than "
                        + chosen.name()
                        + " there)"));
            break;
          }
        } catch (KernelCatalog.KernelUnavailableException e) {
          // Unavailable here: the chosen kernel takes every call.
        }
      }
    }

    for (KernelSelection.Outcome o : outcomes) {
      LOG.info("layer {}: {}", config.layer(), o);
    }
    if (chosen == null) {
      String reasons =
          outcomes.stream()
              .filter(o -> !o.reason().startsWith("skipped:"))
              .map(KernelSelection.Outcome::reason)
              .collect(Collectors.joining("\n"));
      String message =
          options.forced() != null
              ? "The forced kernel "
                  + options.forced()
                  + " cannot implement layer "
                  + config.describe()
                  + ". Reason: "
                  + reasons
              : "Failed to find a kernel that can implement the "
                  + config.scheme()
                  + " linear layer "
                  + config.describe()
                  + ". Reasons: \n"
                  + reasons;
      throw new NoKernelException(message, outcomes);
    }
    return new KernelSelection(config, chosen, manyRows, manyRowsFrom, outcomes);
  }
}
