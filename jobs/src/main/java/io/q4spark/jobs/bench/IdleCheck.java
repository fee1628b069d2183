package io.q4spark.jobs.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Is the machine quiet enough to benchmark? Reads the 1-minute load average and runs a fixed
 * CPU-bound loop twice on {@code threads} threads at once; a busy or throttling machine shows as a
 * high load or as two runs of the same work taking different times.
 */
final class IdleCheck {
  /** More runnable threads than this, averaged over a minute, means someone else is running. */
  static final double MAX_LOAD = 0.5;

  /** Two runs of the same loop differing by more than this means the speed is not steady. */
  static final double MAX_SPREAD = 0.10;

  /** Steps of the calibration loop: about 0.1-0.2 s per run on a 3 GHz core (3 cycles a step). */
  static final long FULL_STEPS = 150_000_000L;

  static final Path LOADAVG = Path.of("/proc/loadavg");

  /** Where the loop's result goes, so the JIT cannot drop the loop. */
  @SuppressWarnings("unused")
  private static volatile long sink;

  /**
   * The result.
   *
   * @param loadAverage the 1-minute load average, or NaN where /proc/loadavg cannot be read
   * @param firstMillis the first calibration run
   * @param secondMillis the second calibration run
   */
  record Result(double loadAverage, double firstMillis, double secondMillis) {
    double spread() {
      return Math.abs(firstMillis - secondMillis) / Math.min(firstMillis, secondMillis);
    }

    /** Warning lines; empty when the machine looks idle. */
    List<String> warnings() {
      List<String> w = new ArrayList<>();
      if (loadAverage > MAX_LOAD) {
        w.add(
            String.format(
                "WARNING: the 1-minute load average is %.2f (over %.2f): other work is running and"
                    + " the timings are noisy",
                loadAverage, MAX_LOAD));
      }
      if (spread() > MAX_SPREAD) {
        w.add(
            String.format(
                "WARNING: two runs of the same calibration loop took %.1f and %.1f ms (%.0f%% apart,"
                    + " over %.0f%%): the machine's speed is not steady",
                firstMillis, secondMillis, 100 * spread(), 100 * MAX_SPREAD));
      }
      return w;
    }

    String describe() {
      return String.format(
          "idle check: load average %.2f, calibration %.1f / %.1f ms (%.1f%% apart)",
          loadAverage, firstMillis, secondMillis, 100 * spread());
    }
  }

  private IdleCheck() {}

  static Result run(int threads, long steps) throws Exception {
    double load = loadAverage();
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      // A short run first so both measured runs execute compiled code.
      calibrate(pool, threads, steps / 16);
      double first = calibrate(pool, threads, steps);
      double second = calibrate(pool, threads, steps);
      return new Result(load, first, second);
    } finally {
      pool.shutdownNow();
    }
  }

  /** The 1-minute load average, NaN if unreadable (not Linux). */
  static double loadAverage() {
    try {
      String[] fields = Files.readString(LOADAVG).trim().split("\\s+");
      return Double.parseDouble(fields[0]);
    } catch (IOException | RuntimeException e) {
      return Double.NaN;
    }
  }

  /** Wall time of {@code threads} copies of the loop running at once, in ms. */
  private static double calibrate(ExecutorService pool, int threads, long steps) throws Exception {
    long start = System.nanoTime();
    List<Future<Long>> parts = new ArrayList<>();
    for (int t = 0; t < threads; t++) {
      long seed = t + 1;
      parts.add(pool.submit(() -> xorshift(seed, steps)));
    }
    long check = 0;
    for (Future<Long> f : parts) {
      check ^= f.get();
    }
    double ms = (System.nanoTime() - start) / 1e6;
    sink = check;
    return ms;
  }

  /** A dependent chain of shifts and xors: pure ALU work, nothing the JIT can skip or vectorize. */
  static long xorshift(long seed, long steps) {
    long x = seed;
    for (long i = 0; i < steps; i++) {
      x ^= x << 13;
      x ^= x >>> 7;
      x ^= x << 17;
    }
    return x;
  }
}
