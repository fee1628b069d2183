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
 * <p>The loop: {@link VectorLongSum} (full-width vector loads) when {@code jdk.incubator.vector} is
 * present, else a plain loop with four independent accumulators. Both issue loads faster than DRAM
 * delivers them; the vector loop keeps more bytes in flight and measured about a quarter more on
 * the CI machine, so it gives the tighter roof. The host's bandwidth is shared with other tenants
 * and varies from minute to minute: the best of many short passes is the roof.
 */
final class DramBandwidth {
  /** 256 MiB: eight times a 32 MiB L3, so nothing of the previous pass is left in cache. */
  static final int ARRAY_BYTES = 256 << 20;

  /** The summing loop. */
  interface RangeSum {
    long sum(long[] a, int from, int to);

    String name();
  }

  /** The plain loop, for JVMs without the Vector API. */
  static final RangeSum PLAIN =
      new RangeSum() {
        @Override
        public long sum(long[] a, int from, int to) {
          return DramBandwidth.sum(a, from, to);
        }

        @Override
        public String name() {
          return "plain loop";
        }
      };

  /**
   * The result.
   *
   * @param loop the summing loop's name
   * @param threads threads reading
   * @param bytes bytes read per pass
   * @param gbPerSecond one value per measured pass, 10^9 bytes per second
   */
  record Result(String loop, int threads, long bytes, double[] gbPerSecond) {
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
    RangeSum loop = loop();
    long[] data = new long[ARRAY_BYTES / Long.BYTES];
    for (int i = 0; i < data.length; i++) {
      data[i] = i;
    }
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      double[] gbs = new double[passes];
      for (int p = -1; p < passes; p++) {
        double g = pass(pool, threads, data, loop);
        if (p >= 0) {
          gbs[p] = g;
        }
      }
      return new Result(loop.name(), threads, (long) data.length * Long.BYTES, gbs);
    } finally {
      pool.shutdownNow();
    }
  }

  /** The Vector API loop when its module is present (and loads), else the plain one. */
  static RangeSum loop() {
    if (ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent()) {
      try {
        return (RangeSum)
            Class.forName("io.q4spark.jobs.bench.VectorLongSum")
                .getDeclaredConstructor()
                .newInstance();
      } catch (ReflectiveOperationException | LinkageError e) {
        // fall back to the plain loop
      }
    }
    return PLAIN;
  }

  private static double pass(ExecutorService pool, int threads, long[] data, RangeSum loop)
      throws Exception {
    int slice = (data.length + threads - 1) / threads;
    List<Future<long[]>> parts = new ArrayList<>();
    for (int t = 0; t < threads; t++) {
      int from = Math.min(data.length, t * slice);
      int to = Math.min(data.length, from + slice);
      parts.add(
          pool.submit(
              () -> {
                long start = System.nanoTime();
                long sum = loop.sum(data, from, to);
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
