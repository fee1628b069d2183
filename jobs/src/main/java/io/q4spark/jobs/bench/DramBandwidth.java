package io.q4spark.jobs.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Measures DRAM read bandwidth: {@code threads} threads each sum their contiguous slice of one
 * array far larger than the last-level cache, several passes; a pass's bandwidth is the array's
 * bytes over the time from the first thread's start to the last thread's end. The roof a layer
 * cannot beat is {@code bytes it must read / best bandwidth}.
 *
 * <p>Plain loops: four independent accumulators make the sum issue two loads a cycle, about 48 GB/s
 * per core at 3 GHz, above what one core draws from DRAM, so the loop measures the memory, not
 * itself.
 */
final class DramBandwidth {
  /** 256 MiB: eight times a 32 MiB L3, so nothing of the previous pass is left in cache. */
  static final int ARRAY_BYTES = 256 << 20;

  /**
   * The result.
   *
   * @param threads threads reading
   * @param bytes bytes read per pass
   * @param gbPerSecond one value per measured pass, 10^9 bytes per second
   */
  record Result(int threads, long bytes, double[] gbPerSecond) {
    /** The fastest pass: the roof. */
    double best() {
      return new Quantiles(gbPerSecond).max();
    }

    double median() {
      return new Quantiles(gbPerSecond).median();
    }

    /** The time to read {@code bytes} at the best bandwidth, in ms. */
    double roofMillis(long readBytes) {
      return readBytes / best() / 1e6;
    }
  }

  /** Where the sums go, so the JIT cannot drop the loop. */
  @SuppressWarnings("unused")
  private static volatile long sink;

  private DramBandwidth() {}

  /** One warm-up pass then {@code passes} measured ones. */
  static Result measure(int threads, int passes) throws Exception {
    long[] data = new long[ARRAY_BYTES / Long.BYTES];
    for (int i = 0; i < data.length; i++) {
      data[i] = i;
    }
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      double[] gbs = new double[passes];
      for (int p = -1; p < passes; p++) {
        double g = pass(pool, threads, data);
        if (p >= 0) {
          gbs[p] = g;
        }
      }
      return new Result(threads, (long) data.length * Long.BYTES, gbs);
    } finally {
      pool.shutdownNow();
    }
  }

  private static double pass(ExecutorService pool, int threads, long[] data) throws Exception {
    int slice = (data.length + threads - 1) / threads;
    List<Future<long[]>> parts = new ArrayList<>();
    for (int t = 0; t < threads; t++) {
      int from = Math.min(data.length, t * slice);
      int to = Math.min(data.length, from + slice);
      parts.add(
          pool.submit(
              () -> {
                long start = System.nanoTime();
                long sum = sum(data, from, to);
                return new long[] {start, System.nanoTime(), sum};
              }));
    }
    long first = Long.MAX_VALUE;
    long last = Long.MIN_VALUE;
    long check = 0;
    for (Future<long[]> f : parts) {
      long[] r = f.get();
      first = Math.min(first, r[0]);
      last = Math.max(last, r[1]);
      check += r[2];
    }
    sink = check;
    return (double) data.length * Long.BYTES / (last - first);
  }

  static long sum(long[] a, int from, int to) {
    long s0 = 0;
    long s1 = 0;
    long s2 = 0;
    long s3 = 0;
    int i = from;
    for (; i + 3 < to; i += 4) {
      s0 += a[i];
      s1 += a[i + 1];
      s2 += a[i + 2];
      s3 += a[i + 3];
    }
    for (; i < to; i++) {
      s0 += a[i];
    }
    return s0 + s1 + s2 + s3;
  }
}
