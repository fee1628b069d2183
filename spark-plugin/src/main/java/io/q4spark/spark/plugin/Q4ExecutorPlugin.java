package io.q4spark.spark.plugin;

import io.q4spark.spark.conf.Q4Settings;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.spark.api.plugin.ExecutorPlugin;
import org.apache.spark.api.plugin.PluginContext;
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
    BackendChoice backend;
    try {
      backend = BackendChoice.choose(settings.backend(), ctx.executorID());
    } catch (BackendChoice.BackendUnavailableException e) {
      LOG.error("q4spark: {}", e.getMessage());
      throw e;
    }
    LOG.info("q4spark executor {}: {}", ctx.executorID(), backend.reason());
    Q4Metrics metrics = new Q4Metrics(ctx.metricRegistry(), backend.chosen().configName());
    executor = new Q4Executor(ctx, settings, backend, metrics);
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
