package io.q4spark.kernels.simd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;

class ParallelRangeTest {
  @Test
  void everyColumnRunsExactlyOnceAcrossManyQuickCalls() {
    assertTimeoutPreemptively(
        Duration.ofSeconds(60),
        () -> {
          for (int call = 0; call < 20_000; call++) {
            int n = 8 + (call * 37) % 500;
            int threads = 1 + call % 5;
            AtomicIntegerArray visits = new AtomicIntegerArray(n);
            ParallelRange.run(
                threads,
                n,
                8,
                (from, to) -> {
                  assertEquals(0, from % 8, "parts start on the alignment");
                  for (int i = from; i < to; i++) {
                    visits.incrementAndGet(i);
                  }
                });
            for (int i = 0; i < n; i++) {
              assertEquals(1, visits.get(i), "call " + call + " column " + i);
            }
          }
        });
  }

  @Test
  void concurrentCallersEachGetTheirWholeRange() throws Exception {
    Thread[] callers = new Thread[4];
    AtomicIntegerArray[] visits = new AtomicIntegerArray[callers.length];
    for (int c = 0; c < callers.length; c++) {
      AtomicIntegerArray v = new AtomicIntegerArray(256);
      visits[c] = v;
      callers[c] =
          new Thread(
              () -> {
                for (int call = 0; call < 500; call++) {
                  ParallelRange.run(
                      3,
                      256,
                      8,
                      (from, to) -> {
                        for (int i = from; i < to; i++) {
                          v.incrementAndGet(i);
                        }
                      });
                }
              });
      callers[c].start();
    }
    for (Thread t : callers) {
      t.join(60_000);
    }
    for (AtomicIntegerArray v : visits) {
      for (int i = 0; i < v.length(); i++) {
        assertEquals(500, v.get(i));
      }
    }
  }

  @Test
  void aFailingPartFailsTheCallAndTheGangKeepsWorking() {
    IllegalStateException e =
        assertThrows(
            IllegalStateException.class,
            () ->
                ParallelRange.run(
                    4,
                    64,
                    8,
                    (from, to) -> {
                      if (from > 0) {
                        throw new IllegalStateException("part at " + from);
                      }
                    }));
    assertEquals(true, e.getMessage().startsWith("part at "));
    AtomicIntegerArray visits = new AtomicIntegerArray(64);
    ParallelRange.run(4, 64, 8, (from, to) -> visits.incrementAndGet(from));
    assertEquals(1, visits.get(0));
  }
}
