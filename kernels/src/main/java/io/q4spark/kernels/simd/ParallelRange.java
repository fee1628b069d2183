package io.q4spark.kernels.simd;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Splits a range of output columns across a bounded pool of daemon threads, one pool per thread
 * count and process. The caller's thread computes the first part itself, so one thread means no
 * hand-off at all.
 */
final class ParallelRange {
  private static final ConcurrentHashMap<Integer, ExecutorService> POOLS =
      new ConcurrentHashMap<>();

  /** Work on columns [from, to). */
  interface Body {
    void run(int from, int to);
  }

  private ParallelRange() {}

  /**
   * Runs {@code body} over [0, n) in at most {@code threads} parts whose boundaries are multiples
   * of {@code align} (except the end).
   */
  static void run(int threads, int n, int align, Body body) {
    int units = (n + align - 1) / align;
    int parts = Math.max(1, Math.min(threads, units));
    if (parts == 1) {
      body.run(0, n);
      return;
    }
    ExecutorService pool = POOLS.computeIfAbsent(threads, ParallelRange::newPool);
    Future<?>[] futures = new Future<?>[parts - 1];
    for (int p = 1; p < parts; p++) {
      int from = Math.min(n, (int) ((long) units * p / parts) * align);
      int to = Math.min(n, (int) ((long) units * (p + 1) / parts) * align);
      futures[p - 1] = pool.submit(() -> body.run(from, to));
    }
    body.run(0, Math.min(n, (units / parts) * align));
    for (Future<?> f : futures) {
      try {
        f.get();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted while waiting for kernel threads", e);
      } catch (java.util.concurrent.ExecutionException e) {
        Throwable c = e.getCause();
        if (c instanceof RuntimeException r) {
          throw r;
        }
        if (c instanceof Error err) {
          throw err;
        }
        throw new IllegalStateException(c);
      }
    }
  }

  private static ExecutorService newPool(int threads) {
    AtomicInteger id = new AtomicInteger();
    return Executors.newFixedThreadPool(
        threads - 1,
        r -> {
          Thread t = new Thread(r, "q4spark-kernel-" + threads + "-" + id.incrementAndGet());
          t.setDaemon(true);
          return t;
        });
  }
}
