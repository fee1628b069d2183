package io.q4spark.spark.plugin;

import io.q4spark.spark.conf.Q4Conf;
import io.q4spark.spark.model.Q4Models;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.spark.SparkContext;
import org.apache.spark.api.plugin.DriverPlugin;
import org.apache.spark.api.plugin.PluginContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import scala.Tuple2;

/**
 * The driver side of {@code Q4SparkPlugin}: validates every {@code spark.q4.*} key (an unknown key
 * or an invalid value fails the application's start with the key named) and hands the map to the
 * executors through the init return value. It answers the executors' {@link LiveModels} and {@link
 * ModelLookup} requests and forgets the registered models when the application ends.
 */
public final class Q4DriverPlugin implements DriverPlugin {
  private static final Logger LOG = LoggerFactory.getLogger(Q4DriverPlugin.class);
  private static final AtomicInteger INITS = new AtomicInteger();

  /** How many times a driver plugin was initialised in this JVM (for tests). */
  public static int initCount() {
    return INITS.get();
  }

  @Override
  public Map<String, String> init(SparkContext sc, PluginContext ctx) {
    Map<String, String> conf = new HashMap<>();
    for (Tuple2<String, String> e : sc.getConf().getAll()) {
      conf.put(e._1(), e._2());
    }
    Map<String, String> q4 = Q4Conf.validate(conf);
    INITS.incrementAndGet();
    LOG.info("q4spark driver plugin: configuration {}", q4);
    return q4;
  }

  @Override
  public Object receive(Object message) {
    if (message instanceof LiveModels) {
      return new HashSet<>(Q4Models.liveBroadcastIds());
    }
    if (message instanceof ModelLookup(String name)) {
      try {
        return Q4Models.get(name);
      } catch (IllegalArgumentException e) {
        // A reply, not a failure: the executor rethrows it with this message in the task's error.
        return e.getMessage();
      }
    }
    throw new IllegalArgumentException(
        "q4spark driver plugin: unexpected message "
            + message
            + ", expected LiveModels or ModelLookup");
  }

  @Override
  public void shutdown() {
    Q4Models.clear();
  }
}
