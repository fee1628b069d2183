package io.q4spark.jobs.bench;

import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtLoggingLevel;
import ai.onnxruntime.OrtSession;

/**
 * The process's ONNX Runtime environment, created once with one global intra-op thread pool that
 * every session shares (sessions are created with per-session threads disabled).
 *
 * <p>Why global: cold mode runs one session per weight copy, dozens of them. With per-session pools
 * each session would own its threads, every call would wake another session's parked pool (a cost
 * our kernels, sharing one pool, do not pay), and the spinning threads of hundreds of sessions for
 * a small layer would load the machine. A model's layers share one pool in a real deployment too.
 *
 * <p>ONNX Runtime allows one environment per process, so the thread count is fixed by the first
 * call; asking for another count later fails with a message.
 */
final class OnnxRuntimeEnvironment {
  private static OrtEnvironment environment;
  private static int environmentThreads;

  private OnnxRuntimeEnvironment() {}

  /** The environment, its global pool running {@code threads} threads per call. */
  static synchronized OrtEnvironment get(int threads) throws OrtException {
    if (environment == null) {
      try (OrtEnvironment.ThreadingOptions t = new OrtEnvironment.ThreadingOptions()) {
        t.setGlobalIntraOpNumThreads(threads);
        t.setGlobalInterOpNumThreads(1);
        // Spinning pool threads keep a core busy after each call and slowed the next backend in the
        // same run by 2x (measured: SimdW4A16 at M=1 1.13 ms with spinning, 0.60 ms without), while
        // ONNX Runtime's own times did not change (0.279 vs 0.283 ms at M=1, 2.56 vs 2.55 at M=16).
        t.setGlobalSpinControl(false);
        environment =
            OrtEnvironment.getEnvironment(
                OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING, "q4spark-bench", t);
      }
      // ORT_DISABLE_TELEMETRY=1 must be set before ONNX Runtime loads (bin/q4spark sets it); this
      // only stops the events of later calls.
      environment.setTelemetry(false);
      environmentThreads = threads;
    } else if (threads != environmentThreads) {
      throw new IllegalStateException(
          "ONNX Runtime's global thread pool was created with "
              + environmentThreads
              + " threads, but "
              + threads
              + " were asked for: one process benchmarks one thread count");
    }
    return environment;
  }

  /**
   * Options for a session on the global pool: sequential execution (one node anyway), no
   * per-session threads, every graph optimization (ONNX Runtime's default, which prepacks
   * MatMulNBits' weights).
   */
  static OrtSession.SessionOptions sessionOptions() throws OrtException {
    OrtSession.SessionOptions o = new OrtSession.SessionOptions();
    try {
      o.disablePerSessionThreads();
      o.setExecutionMode(OrtSession.SessionOptions.ExecutionMode.SEQUENTIAL);
      return o;
    } catch (OrtException | RuntimeException e) {
      o.close();
      throw e;
    }
  }
}
