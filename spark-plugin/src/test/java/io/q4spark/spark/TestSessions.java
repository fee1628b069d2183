package io.q4spark.spark;

import java.util.Map;
import org.apache.spark.sql.SparkSession;

/** The local Spark sessions the tests run in: the q4spark plugin on, the UI off. */
public final class TestSessions {
  private TestSessions() {}

  /** A {@code local[2]} session named {@code app} with the plugin and {@code conf} set. */
  public static SparkSession local(String app, Map<String, String> conf) {
    SparkSession.Builder b =
        SparkSession.builder()
            .master("local[2]")
            .appName(app)
            .config("spark.ui.enabled", "false")
            .config("spark.plugins", Q4SparkPlugin.class.getName());
    conf.forEach(b::config);
    return b.getOrCreate();
  }
}
