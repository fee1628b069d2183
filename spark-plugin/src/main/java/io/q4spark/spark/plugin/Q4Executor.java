package io.q4spark.spark.plugin;

import io.q4spark.kernels.KernelOptions;
import io.q4spark.spark.Q4SparkPlugin;
import io.q4spark.spark.conf.Backend;
import io.q4spark.spark.conf.Q4Settings;
import io.q4spark.spark.model.ModelCache;
import io.q4spark.spark.model.ModelHandle;
import java.util.Set;
import java.util.concurrent.Semaphore;
import java.util.stream.Collectors;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.apache.spark.api.plugin.PluginContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What one executor set up once, at plugin init, for every task it runs: the settings, the chosen
 * backend, the metrics, the kernel options and the materialised models. Tasks reach it through
 * {@link #current()}.
 */
public final class Q4Executor implements AutoCloseable {
  private static volatile Q4Executor current;

  private static final Logger LOG = LoggerFactory.getLogger(Q4Executor.class);

  private final PluginContext context;
  private final String executorId;
  private final Q4Settings settings;
  private final BackendChoice backend;
  private final KernelWarmup kernels;
  private final Q4Metrics metrics;
  private final Semaphore gpuSlots;
  private final ModelCache models;
  private final BufferAllocator allocator = new RootAllocator();

  Q4Executor(
      PluginContext context,
      Q4Settings settings,
      BackendChoice backend,
      KernelWarmup kernels,
      Q4Metrics metrics) {
    this.context = context;
    this.executorId = context.executorID();
    this.settings = settings;
    this.backend = backend;
    this.kernels = kernels;
    this.metrics = metrics;
    this.gpuSlots = new Semaphore(settings.gpuConcurrentTasks(), true);
    this.models = new ModelCache(kernels::options);
  }

  /**
   * This executor's q4spark state.
   *
   * @throws IllegalStateException naming the fix when the plugin is not running in this JVM
   */
  public static Q4Executor current() {
    Q4Executor e = current;
    if (e == null) {
      throw new IllegalStateException(
          "q4spark's executor plugin is not running in this JVM: start Spark with"
              + " spark.plugins="
              + Q4SparkPlugin.class.getName());
    }
    return e;
  }

  /** Whether the executor plugin has set up this JVM. */
  public static boolean isRunning() {
    return current != null;
  }

  static void install(Q4Executor executor) {
    current = executor;
  }

  /** Clears the singleton (if it is {@code executor}) and frees what it holds. */
  static void uninstall(Q4Executor executor) {
    if (current == executor) {
      current = null;
    }
    executor.close();
  }

  public String executorId() {
    return executorId;
  }

  public Q4Settings settings() {
    return settings;
  }

  public BackendChoice backend() {
    return backend;
  }

  public Q4Metrics metrics() {
    return metrics;
  }

  /** The executor's Arrow allocator: batches take child allocators from it. */
  public BufferAllocator allocator() {
    return allocator;
  }

  /** The models materialised on this executor. */
  public ModelCache models() {
    return models;
  }

  /**
   * Asks the driver which models are registered and frees the others (the plugin does this
   * periodically; a failed ask is logged and retried at the next period).
   */
  public void syncModels() {
    try {
      if (context.ask(LiveModels.REQUEST) instanceof Set<?> live) {
        models.retainOnly(live.stream().map(Long.class::cast).collect(Collectors.toSet()));
      }
    } catch (Exception e) {
      LOG.warn("q4spark: could not ask the driver for the registered models: {}", e.toString());
    }
  }

  /**
   * The registered model {@code name}, asked of the driver (one round trip: callers keep the handle
   * for the task).
   *
   * @throws IllegalArgumentException naming the registered models when there is none of that name
   * @throws IllegalStateException when the driver cannot be asked
   */
  public ModelHandle lookupModel(String name) {
    Object reply;
    try {
      reply = context.ask(new ModelLookup(name));
    } catch (Exception e) {
      throw new IllegalStateException(
          "executor " + executorId + ": could not ask the driver for model '" + name + "'", e);
    }
    if (reply instanceof ModelHandle h) {
      return h;
    }
    throw new IllegalArgumentException(String.valueOf(reply));
  }

  /**
   * The options every layer on this executor is prepared with: the configured ones, on the bound
   * GPU when the backend is CUDA, with the CUDA kernels denied when it is the CPU. On CUDA this
   * waits for the kernels' compilation started at init.
   */
  public KernelOptions kernelOptions() {
    return kernels.options();
  }

  /**
   * Runs {@code work} holding one of the executor's {@code spark.q4.gpu.concurrentTasks} GPU slots
   * when the backend is CUDA; on the CPU it runs at once.
   */
  public void withDevice(Runnable work) {
    if (backend.chosen() != Backend.CUDA) {
      work.run();
      return;
    }
    gpuSlots.acquireUninterruptibly();
    try {
      work.run();
    } finally {
      gpuSlots.release();
    }
  }

  @Override
  public void close() {
    models.close();
    // Reports leaked batch memory (Arrow throws naming the allocations still open).
    allocator.close();
  }
}
