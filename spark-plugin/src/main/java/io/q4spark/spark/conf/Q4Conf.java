package io.q4spark.spark.conf;

import io.q4spark.kernels.KernelCatalog;
import io.q4spark.kernels.KernelOptions;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * Every {@code spark.q4.*} key q4spark reads, declared once. {@code kernels} never sees Spark
 * configuration: {@link #kernelOptions} maps these keys onto its plain options record.
 */
public final class Q4Conf {
  private Q4Conf() {}

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
  public static final List<ConfigEntry<?>> ALL = List.of(KERNELS_DISABLED, KERNELS_FORCE);

  /**
   * The kernel options for {@code conf} (a {@code spark.q4.*} map) plus the environment's
   * deny-list.
   */
  public static KernelOptions kernelOptions(Map<String, String> conf) {
    return KernelOptions.fromEnvironment()
        .withDisabled(String.join(",", KERNELS_DISABLED.get(conf)), KERNELS_DISABLED.key())
        .withForced(KERNELS_FORCE.get(conf));
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

  private static List<String> names(String s) {
    return Arrays.stream(s.split(",")).map(String::trim).filter(x -> !x.isEmpty()).toList();
  }
}
