package io.q4spark.spark.plugin;

import io.q4spark.kernels.KernelOptions;
import io.q4spark.spark.conf.Backend;
import io.q4spark.spark.conf.Q4Conf;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The CUDA kernels' compilation, started at executor init on a thread of its own. NVRTC takes about
 * 20 s on a cold CUBIN cache; run inside {@code ExecutorPlugin.init} that held up the executor's
 * registration (Spark logged a NullPointerException from its heartbeat during such an init), so
 * init only opens the device and starts this, and the first task to prepare a layer waits for it
 * ({@link #options()}).
 *
 * <p>If compiling fails, an executor on {@code spark.q4.backend=auto} runs its layers on the CPU
 * kernels with the reason logged; on {@code cuda} every task that needs a layer fails with the
 * reason.
 */
final class KernelWarmup {
  private static final Logger LOG = LoggerFactory.getLogger(KernelWarmup.class);

  private final CompletableFuture<KernelOptions> options;

  private KernelWarmup(CompletableFuture<KernelOptions> options) {
    this.options = options;
  }

  /** Nothing to compile: {@code options} at once (the CPU backend). */
  static KernelWarmup ready(KernelOptions options) {
    return new KernelWarmup(CompletableFuture.completedFuture(options));
  }

  /**
   * Starts {@code compile} (returning its milliseconds) on a daemon thread.
   *
   * @param cuda the options once the kernels are compiled
   * @param cpu the options should compiling fail under {@code auto}
   */
  static KernelWarmup start(
      Backend requested,
      String executorId,
      KernelOptions cuda,
      KernelOptions cpu,
      Callable<Long> compile) {
    CompletableFuture<KernelOptions> f = new CompletableFuture<>();
    Thread t =
        new Thread(
            () -> {
              try {
                long ms = compile.call();
                LOG.info(
                    "q4spark executor {}: CUDA kernels compiled or loaded in {} ms",
                    executorId,
                    ms);
                f.complete(cuda);
              } catch (Exception | LinkageError e) {
                String why =
                    "executor " + executorId + ": the CUDA kernels could not be compiled: " + e;
                if (requested == Backend.AUTO) {
                  LOG.warn("q4spark {}; {}=auto: using the CPU kernels", why, Q4Conf.BACKEND.key());
                  f.complete(cpu);
                } else {
                  LOG.error("q4spark {}", why);
                  f.completeExceptionally(new IllegalStateException(why, e));
                }
              }
            },
            "q4spark-cuda-compile");
    t.setDaemon(true);
    t.start();
    return new KernelWarmup(f);
  }

  /**
   * The options layers are prepared with, waiting for the compilation if it is still running.
   *
   * @throws IllegalStateException naming the executor and the compile error, on a forced CUDA
   *     backend whose kernels did not compile
   */
  KernelOptions options() {
    try {
      return options.join();
    } catch (CompletionException e) {
      throw (IllegalStateException) e.getCause();
    }
  }

  /** Whether the compilation has ended (either way). */
  boolean isDone() {
    return options.isDone();
  }
}
