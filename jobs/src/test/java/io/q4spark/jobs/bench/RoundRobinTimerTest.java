package io.q4spark.jobs.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class RoundRobinTimerTest {
  /** A megabyte a call: the allocation count must see at least this. */
  private static final int ALLOCATION = 1 << 20;

  private static Backend backend(String id, Backend.Call call) {
    return new Backend(id, id, null, "float32", "fp32", 1, 1, call, () -> new float[0]);
  }

  @Test
  void timesEveryBackendInRoundsAndCountsAllocation() throws Exception {
    List<String> order = new ArrayList<>();
    List<Object> keep = new ArrayList<>();
    Backend spin =
        backend(
            "spin",
            () -> {
              order.add("spin");
              long end = System.nanoTime() + 20_000;
              while (System.nanoTime() < end) {
                Thread.onSpinWait();
              }
            });
    Backend alloc =
        backend(
            "alloc",
            () -> {
              order.add("alloc");
              keep.add(new byte[ALLOCATION]);
              if (keep.size() > 8) {
                keep.clear();
              }
            });
    RoundRobinTimer.Budget quick = RoundRobinTimer.Budget.quick();
    List<RoundRobinTimer.Timing> timings = new RoundRobinTimer(quick).measure(List.of(spin, alloc));
    assertEquals(2, timings.size());
    for (RoundRobinTimer.Timing t : timings) {
      assertTrue(t.perCallNanos().length >= quick.minReps(), t.backend().id());
      assertTrue(t.perCallNanos().length <= quick.maxReps(), t.backend().id());
      assertTrue(t.callsPerRep() >= 1);
      for (double v : t.perCallNanos()) {
        assertTrue(v > 0);
      }
    }
    // 20 µs of spinning a call, within the clock's and the scheduler's noise.
    assertTrue(timings.get(0).quantiles().median() >= 20_000, "spin median below its spin time");
    assertTrue(timings.get(1).allocatedBytesPerCall() >= ALLOCATION, "allocation not counted");
    assertTrue(timings.get(0).allocatedBytesPerCall() < ALLOCATION / 16.0, "spin allocates");
    // The measured part alternates: after the warm-ups, both backends appear in every round.
    int lastSpin = order.lastIndexOf("spin");
    int lastAlloc = order.lastIndexOf("alloc");
    assertTrue(Math.abs(lastSpin - lastAlloc) < order.size() / 2, "not interleaved");
  }
}
