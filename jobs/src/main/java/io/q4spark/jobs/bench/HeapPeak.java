package io.q4spark.jobs.bench;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.util.List;

/**
 * The Java heap around one shape's measurements. After setup, a full collection leaves the resident
 * set (the packed weights and their kernel copies, the buffers) as {@link #resident}; the peaks of
 * the heap pools are then reset, and after the measurements their sum, less the resident set, is
 * what the calls needed beyond the packed weights.
 *
 * <p>A pool's peak counts garbage not yet collected, so the young generation's peak approaches its
 * size as soon as the calls allocate anything: read the figure as an upper bound, beside the
 * allocated bytes per call that the timer measures exactly.
 */
final class HeapPeak {
  private final List<MemoryPoolMXBean> pools =
      ManagementFactory.getMemoryPoolMXBeans().stream()
          .filter(p -> p.getType() == MemoryType.HEAP && p.isValid())
          .toList();
  private long resident;

  /** Collects, records the resident heap and resets the peaks; call after setup. */
  void start() {
    System.gc();
    resident = used();
    pools.forEach(MemoryPoolMXBean::resetPeakUsage);
  }

  /** Heap in use after setup's collection. */
  long resident() {
    return resident;
  }

  /** Sum of the heap pools' peaks since {@link #start}. */
  long peak() {
    long sum = 0;
    for (MemoryPoolMXBean p : pools) {
      sum += p.getPeakUsage().getUsed();
    }
    return sum;
  }

  /** Peak beyond the resident set, at least 0. */
  long beyondResident() {
    return Math.max(0, peak() - resident);
  }

  private long used() {
    long sum = 0;
    for (MemoryPoolMXBean p : pools) {
      sum += p.getUsage().getUsed();
    }
    return sum;
  }
}
