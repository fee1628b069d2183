package io.q4spark.spark.plugin;

import io.q4spark.kernels.KernelOptions;
import io.q4spark.kernels.cuda.CudaDevice;
import io.q4spark.kernels.cuda.CudaOptions;
import io.q4spark.kernels.cuda.CudaPrograms;
import io.q4spark.spark.conf.Backend;
import io.q4spark.spark.conf.Q4Settings;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.spark.api.plugin.ExecutorPlugin;
import org.apache.spark.api.plugin.PluginContext;
import org.apache.spark.resource.ResourceInformation;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The executor side of {@code Q4SparkPlugin}, once per executor: parses the configuration the
 * driver handed over, chooses the backend (failing the executor when a forced one cannot start),
 * registers the metrics and installs the {@link Q4Executor} tasks use. {@code onTaskStart} is left
 * as the no-op default. Every {@value #SYNC_SECONDS} s it asks the driver which models are still
 * registered and frees the others.
 */
public final class Q4ExecutorPlugin implements ExecutorPlugin {
  private static final Logger LOG = LoggerFactory.getLogger(Q4ExecutorPlugin.class);
  private static final AtomicInteger INITS = new AtomicInteger();

  /**
   * How often executors ask the driver for the registered models: unregistering is rare, and a
   * freed model's memory may wait this long on remote executors.
   */
  static final long SYNC_SECONDS = 10;

  private Q4Executor executor;
  private ScheduledExecutorService sync;

  /** How many times an executor plugin was initialised in this JVM (for tests). */
  public static int initCount() {
    return INITS.get();
  }

  @Override
  public void init(PluginContext ctx, Map<String, String> extraConf) {
    INITS.incrementAndGet();
    Q4Settings settings = Q4Settings.from(extraConf == null ? Map.of() : extraConf);
    int ordinal = gpuOrdinal(ctx, settings);
    BackendChoice backend;
    try {
      backend = startBackend(settings.backend(), ctx.executorID(), ordinal);
    } catch (BackendChoice.BackendUnavailableException e) {
      LOG.error("q4spark: {}", e.getMessage());
      throw e;
    }
    LOG.info("q4spark executor {}: {}", ctx.executorID(), backend.reason());
    KernelOptions cpuOptions =
        settings.kernelOptions().withDisabled(CUDA_KERNELS, "the CPU backend");
    KernelWarmup kernels =
        backend.chosen() == Backend.CUDA
            ? KernelWarmup.start(
                settings.backend(),
                ctx.executorID(),
                settings.kernelOptions().withCudaDevice(ordinal),
                cpuOptions,
                () -> CudaPrograms.compileAll(CudaDevice.shared(cudaOptions(ordinal))))
            : KernelWarmup.ready(cpuOptions);
    Q4Metrics metrics = new Q4Metrics(ctx.metricRegistry(), backend.chosen().configName());
    executor = new Q4Executor(ctx, settings, backend, kernels, metrics);
    Q4Executor.install(executor);
    sync =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "q4spark-model-sync");
              t.setDaemon(true);
              return t;
            });
    sync.scheduleWithFixedDelay(executor::syncModels, SYNC_SECONDS, SYNC_SECONDS, TimeUnit.SECONDS);
  }

  /** The GPU kernels, denied on an executor that runs the CPU backend. */
  static final String CUDA_KERNELS = "CudaW4A16Kernel,CudaW4A8Kernel";

  /**
   * The GPU this executor binds: the first address Spark assigned it ({@code
   * spark.executor.resource.gpu.*}), else {@code spark.q4.gpu.device}, else 0. (Local mode has no
   * resources: bind by configuration there.)
   */
  static int gpuOrdinal(PluginContext ctx, Q4Settings settings) {
    ResourceInformation gpu = ctx.resources() == null ? null : ctx.resources().get("gpu");
    if (gpu != null && gpu.addresses().length > 0) {
      try {
        return Integer.parseInt(gpu.addresses()[0].trim());
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException(
            "executor "
                + ctx.executorID()
                + ": the gpu resource address should be a device ordinal, but was "
                + gpu.addresses()[0],
            e);
      }
    }
    return settings.gpuDevice() != null ? settings.gpuDevice() : 0;
  }

  /**
   * Chooses the backend and, for CUDA, opens the device now (a device that cannot be opened is
   * handled as the probe's rejection would be); the kernels are compiled afterwards, off the init
   * path ({@link KernelWarmup}).
   */
  static BackendChoice startBackend(Backend requested, String executorId, int ordinal) {
    BackendChoice choice = BackendChoice.choose(requested, executorId, ordinal);
    if (choice.chosen() != Backend.CUDA) {
      return choice;
    }
    try {
      CudaDevice device = CudaDevice.shared(cudaOptions(ordinal));
      return new BackendChoice(
          requested,
          Backend.CUDA,
          choice.reason() + " on " + device + "; compiling the kernels in the background");
    } catch (RuntimeException e) {
      String why = "CUDA device " + ordinal + " could not be opened: " + e;
      return BackendChoice.choose(requested, executorId, () -> why);
    }
  }

  private static CudaOptions cudaOptions(int ordinal) {
    return CudaOptions.defaults().withDeviceOrdinal(ordinal);
  }

  @Override
  public void shutdown() {
    if (sync != null) {
      sync.shutdownNow();
      sync = null;
    }
    if (executor != null) {
      Q4Executor.uninstall(executor);
      executor = null;
    }
  }
}
