package io.q4spark.kernels.simd;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Splits a range of output columns across a gang of daemon worker threads, one gang per thread
 * count and process. The caller's thread computes the first part itself, so one thread means no
 * hand-off at all.
 *
 * <p>Why not an executor: a layer call at M = 1 takes tens of microseconds per thread on a 16-core
 * machine, and waking 15 parked pool threads through futures cost more than the work (measured on
 * the GPU host: 0.27 ms per call against 0.2 ms for ONNX Runtime). The gang's workers spin for
 * {@link #SPIN_NANOS} after each job before parking, so back-to-back calls hand off in
 * microseconds, while an idle gang costs nothing.
 *
 * <p>One call at a time per gang: a caller that finds the gang busy (another Spark task's call)
 * computes its whole range itself rather than queueing, since the tasks already keep the cores
 * busy.
 */
final class ParallelRange {
  /** How long idle workers (and a waiting caller) spin before parking: a few calls' gap. */
  static final long SPIN_NANOS = 50_000;

  private static final ConcurrentHashMap<Integer, Gang> GANGS = new ConcurrentHashMap<>();

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
    Gang gang = GANGS.computeIfAbsent(threads, Gang::new);
    if (!gang.lock.tryLock()) {
      body.run(0, n);
      return;
    }
    try {
      gang.execute(body, n, align, units, parts);
    } finally {
      gang.lock.unlock();
    }
  }

  /**
   * One call's work: part p covers units [units * p / parts, units * (p + 1) / parts); {@code
   * generation} identifies the call, so a worker runs each call's part exactly once.
   */
  private record Job(
      Body body, int n, int align, int units, int parts, Thread caller, long generation) {
    void runPart(int p) {
      int from = Math.min(n, (int) ((long) units * p / parts) * align);
      int to = Math.min(n, (int) ((long) units * (p + 1) / parts) * align);
      if (from < to) {
        body.run(from, to);
      }
    }
  }

  private static final class Gang {
    final ReentrantLock lock = new ReentrantLock();
    final Thread[] workers;

    /** Incremented for each job; a worker runs a job once when it sees a new value. */
    volatile long generation;

    volatile Job job;
    final AtomicInteger pending = new AtomicInteger();
    final AtomicReference<Throwable> failure = new AtomicReference<>();

    Gang(int threads) {
      workers = new Thread[threads - 1];
      for (int i = 0; i < workers.length; i++) {
        int part = i + 1;
        Thread t = new Thread(() -> work(part), "q4spark-kernel-" + threads + "-" + part);
        t.setDaemon(true);
        workers[i] = t;
        t.start();
      }
    }

    void execute(Body body, int n, int align, int units, int parts) {
      Job j = new Job(body, n, align, units, parts, Thread.currentThread(), generation + 1);
      failure.set(null);
      pending.set(parts - 1);
      job = j;
      generation = j.generation(); // volatile write after the job: publishes it to the workers
      for (int i = 0; i < j.parts() - 1; i++) {
        LockSupport.unpark(workers[i]);
      }
      Throwable own = null;
      try {
        j.runPart(0);
      } catch (RuntimeException | Error e) {
        own = e;
      }
      long spinUntil = System.nanoTime() + SPIN_NANOS;
      while (pending.get() > 0) {
        if (System.nanoTime() < spinUntil) {
          Thread.onSpinWait();
        } else {
          LockSupport.park(this);
        }
      }
      Throwable t = own != null ? own : failure.get();
      if (t instanceof RuntimeException r) {
        throw r;
      }
      if (t instanceof Error e) {
        throw e;
      }
    }

    private void work(int part) {
      long seen = 0;
      while (true) {
        long spinUntil = System.nanoTime() + SPIN_NANOS;
        while (generation == seen) {
          if (System.nanoTime() < spinUntil) {
            Thread.onSpinWait();
          } else {
            LockSupport.park(this);
          }
        }
        // The job read here is at least as new as the generation seen above; remembering its own
        // generation (not the counter's) makes each job run once even if calls follow quickly.
        Job j = job;
        seen = j.generation();
        if (part < j.parts()) {
          try {
            j.runPart(part);
          } catch (RuntimeException | Error e) {
            failure.compareAndSet(null, e);
          } finally {
            if (pending.decrementAndGet() == 0) {
              LockSupport.unpark(j.caller());
            }
          }
        }
      }
    }
  }
}
