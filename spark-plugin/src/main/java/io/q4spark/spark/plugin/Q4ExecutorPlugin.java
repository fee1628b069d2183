package io.q4spark.spark.plugin;

import io.q4spark.spark.conf.Q4Settings;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.spark.api.plugin.ExecutorPlugin;
import org.apache.spark.api.plugin.PluginContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The executor side of {@code Q4SparkPlugin}, once per executor: parses the configuration the
 * driver handed over, chooses the backend (failing the executor when a forced one cannot start),
 * registers the metrics and installs the {@link Q4Executor} tasks use. {@code onTaskStart} is left
 * as the no-op default.
 */
public final class Q4ExecutorPlugin implements ExecutorPlugin {
  private static final Logger LOG = LoggerFactory.getLogger(Q4ExecutorPlugin.class);
  private static final AtomicInteger INITS = new AtomicInteger();

  private Q4Executor executor;

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
    executor = new Q4Executor(ctx.executorID(), settings, backend, metrics);
    Q4Executor.install(executor);
  }

  @Override
  public void shutdown() {
    if (executor != null) {
      Q4Executor.uninstall(executor);
      executor = null;
    }
  }
}
