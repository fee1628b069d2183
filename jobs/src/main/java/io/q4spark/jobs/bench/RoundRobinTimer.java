package io.q4spark.jobs.bench;

import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.locks.LockSupport;

/**
 * Times the backends of one benchmark row side by side:
 *
 * <ol>
 *   <li>warm-up, each backend in turn: calls until {@link Budget#warmupNanos} have passed and at
 *       least {@link Budget#warmupMinCalls} calls were made (or {@link Budget#warmupMaxNanos} for a
 *       very slow backend); the median of the last {@value #RECENT} calls estimates one call;
 *   <li>a batch of calls sized to take at least {@link Budget#batchNanos}, so the clock's
 *       resolution and the loop's overhead vanish, and a number of repetitions that fits the row's
 *       time budget, at least {@link Budget#minReps};
 *   <li>the repetitions, round-robin across the backends (rotating which goes first), so that a
 *       drift of the machine's speed during the row hits every backend alike.
 * </ol>
 *
 * Each repetition gives one time per call (batch time / batch size); the report is the median and
 * the 10th and 90th percentiles over repetitions. Heap allocated by all threads during the timed
 * batches is counted too, per call.
 */
final class RoundRobinTimer {
  /** Warm-up calls whose median estimates one call: late enough that the JIT has settled. */
  static final int RECENT = 16;

  /**
   * The time budget of a row.
   *
   * @param warmupNanos minimum warm-up per backend: long enough for C2 to compile the hot loops
   * @param warmupMinCalls minimum warm-up calls per backend
   * @param warmupMaxNanos warm-up stops here even before {@code warmupMinCalls} (slow references)
   * @param batchNanos a timed batch lasts at least this long
   * @param rowNanos target measuring time per backend
   * @param minReps fewest repetitions per backend, whatever the budget
   * @param maxReps most repetitions per backend
   * @param settleNanos pause before each batch, so ONNX Runtime's spinning pool threads from the
   *     previous batch have parked and do not compete with the next backend
   */
  record Budget(
      long warmupNanos,
      int warmupMinCalls,
      long warmupMaxNanos,
      long batchNanos,
      long rowNanos,
      int minReps,
      int maxReps,
      long settleNanos) {

    /** For real runs: 1 s and 20 calls of warm-up, 20 ms batches, 2.5 s and 15..200 reps a row. */
    static Budget full() {
      return new Budget(
          1_000_000_000L, 20, 5_000_000_000L, 20_000_000L, 2_500_000_000L, 15, 200, 2_000_000L);
    }

    /** For tests: a few calls, 3 repetitions. Numbers from it mean nothing. */
    static Budget quick() {
      return new Budget(20_000_000L, 2, 200_000_000L, 2_000_000L, 10_000_000L, 3, 5, 0L);
    }
  }

  /**
   * One backend's result.
   *
   * @param backend what was timed
   * @param perCallNanos one value per repetition: batch time / calls per batch
   * @param callsPerRep the batch size
   * @param allocatedBytesPerCall heap allocated by all threads during the timed batches, per call,
   *     or NaN where the JVM cannot tell
   */
  record Timing(
      Backend backend, double[] perCallNanos, int callsPerRep, double allocatedBytesPerCall) {
    Quantiles quantiles() {
      return new Quantiles(perCallNanos);
    }
  }

  private final Budget budget;
  private final com.sun.management.ThreadMXBean threads;

  RoundRobinTimer(Budget budget) {
    this.budget = budget;
    this.threads =
        ManagementFactory.getThreadMXBean() instanceof com.sun.management.ThreadMXBean t
                && t.isThreadAllocatedMemorySupported()
            ? t
            : null;
    if (threads != null && !threads.isThreadAllocatedMemoryEnabled()) {
      threads.setThreadAllocatedMemoryEnabled(true);
    }
  }

  /** Warms up and times every backend; results in the order given. */
  List<Timing> measure(List<Backend> backends) throws Exception {
    int count = backends.size();
    int[] batch = new int[count];
    int[] reps = new int[count];
    for (int i = 0; i < count; i++) {
      double perCall = warmUp(backends.get(i).call());
      batch[i] =
          (int) Math.max(1, Math.min(Integer.MAX_VALUE, Math.ceil(budget.batchNanos / perCall)));
      double repNanos = batch[i] * perCall;
      reps[i] =
          (int)
              Math.max(
                  budget.minReps, Math.min(budget.maxReps, Math.floor(budget.rowNanos / repNanos)));
    }
    double[][] perCall = new double[count][];
    long[] allocated = new long[count];
    boolean allocationKnown = threads != null;
    for (int i = 0; i < count; i++) {
      perCall[i] = new double[reps[i]];
    }
    int most = Arrays.stream(reps).max().orElse(0);
    for (int r = 0; r < most; r++) {
      for (int j = 0; j < count; j++) {
        int i = (r + j) % count;
        if (r >= reps[i]) {
          continue;
        }
        if (budget.settleNanos > 0) {
          LockSupport.parkNanos(budget.settleNanos);
        }
        Backend.Call call = backends.get(i).call();
        int calls = batch[i];
        long a0 = allocatedBytes();
        long t0 = System.nanoTime();
        for (int c = 0; c < calls; c++) {
          call.run();
        }
        long t1 = System.nanoTime();
        long a1 = allocatedBytes();
        perCall[i][r] = (double) (t1 - t0) / calls;
        if (a0 < 0 || a1 < 0) {
          allocationKnown = false;
        }
        allocated[i] += a1 - a0;
      }
    }
    List<Timing> out = new ArrayList<>(count);
    for (int i = 0; i < count; i++) {
      double perCallAlloc =
          allocationKnown ? (double) allocated[i] / ((long) reps[i] * batch[i]) : Double.NaN;
      out.add(new Timing(backends.get(i), perCall[i], batch[i], perCallAlloc));
    }
    return out;
  }

  /** Warms {@code call} up; returns the estimated time of one call in ns. */
  private double warmUp(Backend.Call call) throws Exception {
    double[] recent = new double[RECENT];
    int calls = 0;
    long start = System.nanoTime();
    while (true) {
      long t0 = System.nanoTime();
      call.run();
      long t1 = System.nanoTime();
      recent[calls % RECENT] = Math.max(1, t1 - t0);
      calls++;
      long elapsed = t1 - start;
      if ((elapsed >= budget.warmupNanos && calls >= budget.warmupMinCalls)
          || elapsed >= budget.warmupMaxNanos) {
        break;
      }
    }
    return new Quantiles(Arrays.copyOf(recent, Math.min(calls, RECENT))).median();
  }

  private long allocatedBytes() {
    return threads == null ? -1 : threads.getTotalThreadAllocatedBytes();
  }
}
