package io.q4spark.spark.conf;

import io.q4spark.kernels.KernelCatalog;
import io.q4spark.kernels.KernelOptions;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Function;
import java.util.stream.Collectors;

/**
 * Every {@code spark.q4.*} key q4spark reads, declared once. {@code kernels} never sees Spark
 * configuration: {@link #kernelOptions} maps these keys onto its plain options record, and {@link
 * Q4Settings#from} parses the rest.
 */
public final class Q4Conf {
  private Q4Conf() {}

  /** The plugin class {@code spark.plugins} must name (kept as text: conf depends on nothing). */
  public static final String PLUGIN_CLASS = "io.q4spark.spark.Q4SparkPlugin";

  /**
   * Checks that {@code plugins} (the value of {@code spark.plugins}, null when unset) names the
   * q4spark plugin, which sets up the executors that run models.
   *
   * @throws IllegalStateException naming the setting to add
   */
  public static void requirePlugin(String plugins, String what) {
    if (plugins == null
        || !Arrays.asList(plugins.replace(" ", "").split(",")).contains(PLUGIN_CLASS)) {
      throw new IllegalStateException(
          what
              + " needs q4spark's executor plugin: start Spark with spark.plugins="
              + PLUGIN_CLASS
              + " (spark.plugins is "
              + (plugins == null ? "unset" : "'" + plugins + "'")
              + ")");
    }
  }

  /** Every key q4spark reads starts with this. */
  public static final String PREFIX = "spark.q4.";

  /**
   * Largest batch: a batch's activations ({@code rows * K} floats) live in one Java array, so rows
   * stay far enough below 2^31 / K for the widest layers (K = 16384 at 2^17 rows).
   */
  public static final int MAX_BATCH_ROWS = 1 << 17;

  public static final ConfigEntry<Backend> BACKEND =
      choice(
          "spark.q4.backend",
          Backend.AUTO.configName(),
          "Where executors run the layers: `auto` (CUDA when it can start, else the CPU, with the"
              + " reason logged), `cpu`, or `cuda` (an executor that cannot start it fails with the"
              + " reason).",
          Backend.configNames(),
          Backend::parse);

  public static final ConfigEntry<Integer> BATCH_ROWS =
      new ConfigEntry<>(
          "spark.q4.batch.rows",
          "4096",
          "Rows per Arrow batch handed to the kernels.",
          "an integer between 1 and " + MAX_BATCH_ROWS,
          Integer::parseInt,
          v -> v >= 1 && v <= MAX_BATCH_ROWS);

  public static final ConfigEntry<BadRowPolicy> ON_BAD_ROW =
      choice(
          "spark.q4.onBadRow",
          BadRowPolicy.FAIL.configName(),
          "A row whose activations do not have the model's K values: `fail` fails the task naming"
              + " the row, `null` gives a null output for that row and keeps the rest.",
          BadRowPolicy.configNames(),
          BadRowPolicy::parse);

  public static final ConfigEntry<OutputFormat> OUTPUT_FORMAT =
      choice(
          "spark.q4.output.format",
          OutputFormat.FLOAT.configName(),
          "The output column: `float` gives `array<float>`, `fp16` gives `binary` holding N"
              + " little-endian IEEE half-precision values.",
          OutputFormat.configNames(),
          OutputFormat::parse);

  public static final ConfigEntry<Integer> CPU_THREADS =
      new ConfigEntry<>(
          "spark.q4.cpu.threads",
          null,
          "Threads one kernel call may use on the CPU backend; unset means every available"
              + " processor (a call that finds the threads busy with another task runs on its own"
              + " thread).",
          "a positive integer",
          Integer::parseInt,
          v -> v >= 1);

  public static final ConfigEntry<Integer> GPU_CONCURRENT_TASKS =
      new ConfigEntry<>(
          "spark.q4.gpu.concurrentTasks",
          "1",
          "How many tasks of one executor may use its GPU at the same time.",
          "a positive integer",
          Integer::parseInt,
          v -> v >= 1);

  public static final ConfigEntry<Integer> GPU_DEVICE =
      new ConfigEntry<>(
          "spark.q4.gpu.device",
          null,
          "The CUDA device ordinal to bind when the executor was given no GPU resource (local"
              + " mode); unset means the executor's `gpu` resource, else device 0.",
          "a non-negative integer",
          Integer::parseInt,
          v -> v >= 0);

  public static final ConfigEntry<List<String>> KERNELS_DISABLED =
      new ConfigEntry<>(
          "spark.q4.kernels.disabled",
          "",
          "Comma-separated kernel names that selection must skip (added to the "
              + KernelOptions.DISABLED_KERNELS_ENV
              + " environment variable's list).",
          "a comma-separated list of kernel names from " + KernelCatalog.names(),
          Q4Conf::names,
          l -> KernelCatalog.names().containsAll(l));

  public static final ConfigEntry<String> KERNELS_FORCE =
      new ConfigEntry<>(
          "spark.q4.kernels.force",
          null,
          "The one kernel to use for every layer; a layer it cannot implement fails with its reason.",
          "one of " + KernelCatalog.names(),
          s -> s,
          KernelCatalog.names()::contains);

  /** All keys, in the order of the generated documentation table. */
  public static final List<ConfigEntry<?>> ALL =
      List.of(
          BACKEND,
          BATCH_ROWS,
          ON_BAD_ROW,
          OUTPUT_FORMAT,
          CPU_THREADS,
          GPU_CONCURRENT_TASKS,
          GPU_DEVICE,
          KERNELS_DISABLED,
          KERNELS_FORCE);

  /** The declared keys, sorted, for messages. */
  public static List<String> keys() {
    return ALL.stream().map(ConfigEntry::key).sorted().toList();
  }

  /**
   * The {@code spark.q4.*} entries of {@code conf}, sorted by key, after checking that every one is
   * declared and has a valid value.
   *
   * @throws IllegalArgumentException naming an unknown key and the known ones, or in the one
   *     message template for an invalid value
   */
  public static Map<String, String> validate(Map<String, String> conf) {
    Map<String, String> q4 = new TreeMap<>();
    conf.forEach(
        (k, v) -> {
          if (k.startsWith(PREFIX)) {
            q4.put(k, v);
          }
        });
    List<String> known = keys();
    for (String key : q4.keySet()) {
      if (!known.contains(key)) {
        throw new IllegalArgumentException(
            key + " is not a q4spark configuration key; the known keys are " + known);
      }
    }
    ALL.forEach(e -> e.get(q4));
    return q4;
  }

  /**
   * The kernel options for {@code conf} (a {@code spark.q4.*} map) plus the environment's
   * deny-list.
   */
  public static KernelOptions kernelOptions(Map<String, String> conf) {
    KernelOptions o =
        KernelOptions.fromEnvironment()
            .withDisabled(String.join(",", KERNELS_DISABLED.get(conf)), KERNELS_DISABLED.key())
            .withForced(KERNELS_FORCE.get(conf));
    Integer threads = CPU_THREADS.get(conf);
    return threads == null ? o : o.withThreads(threads);
  }

  /** The configuration table (Markdown), generated from {@link #ALL}. */
  public static String markdownTable() {
    return "| key | default | meaning |\n|---|---|---|\n"
        + ALL.stream()
            .map(
                e ->
                    "| `"
                        + e.key()
                        + "` | "
                        + (e.defaultValue() == null || e.defaultValue().isEmpty()
                            ? "(none)"
                            : "`" + e.defaultValue() + "`")
                        + " | "
                        + e.doc()
                        + " |")
            .collect(Collectors.joining("\n"))
        + "\n";
  }

  private static <T> ConfigEntry<T> choice(
      String key, String defaultValue, String doc, List<String> values, Function<String, T> parse) {
    return new ConfigEntry<>(key, defaultValue, doc, "one of " + values, parse, v -> true);
  }

  private static List<String> names(String s) {
    return Arrays.stream(s.split(",")).map(String::trim).filter(x -> !x.isEmpty()).toList();
  }
}
