package io.q4spark.spark.conf;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.q4spark.kernels.KernelOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;

class Q4ConfTest {
  @Test
  void mapsKeysOntoKernelOptions() {
    KernelOptions o =
        Q4Conf.kernelOptions(
            Map.of(
                "spark.q4.kernels.disabled",
                "TiledW4A16Kernel",
                "spark.q4.kernels.force",
                "ScalarW4A16Kernel"));
    assertEquals("spark.q4.kernels.disabled", o.disabled().get("TiledW4A16Kernel"));
    assertEquals("ScalarW4A16Kernel", o.forced());
    assertNull(Q4Conf.kernelOptions(Map.of()).forced());
  }

  @Test
  void invalidValuesUseTheOneMessageTemplate() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> Q4Conf.kernelOptions(Map.of("spark.q4.kernels.force", "Marlin")));
    assertEquals(
        "The value of spark.q4.kernels.force should be one of "
            + io.q4spark.kernels.KernelCatalog.names()
            + ", but was Marlin",
        e.getMessage());
  }

  @Test
  void settingsParseEveryKeyWithDefaults() {
    Q4Settings d = Q4Settings.from(Map.of("spark.master", "local[2]"));
    assertEquals(Backend.AUTO, d.backend());
    assertEquals(4096, d.batchRows());
    assertEquals(BadRowPolicy.FAIL, d.onBadRow());
    assertEquals(OutputFormat.FLOAT, d.outputFormat());
    assertEquals(1, d.gpuConcurrentTasks());
    assertNull(d.gpuDevice());
    assertEquals(Runtime.getRuntime().availableProcessors(), d.kernelOptions().threads());

    Q4Settings s =
        Q4Settings.from(
            Map.of(
                "spark.q4.backend", "CPU",
                "spark.q4.batch.rows", "17",
                "spark.q4.onBadRow", "null",
                "spark.q4.output.format", "fp16",
                "spark.q4.gpu.concurrentTasks", "3",
                "spark.q4.gpu.device", "1",
                "spark.q4.cpu.threads", "2"));
    assertEquals(Backend.CPU, s.backend());
    assertEquals(17, s.batchRows());
    assertEquals(BadRowPolicy.NULL, s.onBadRow());
    assertEquals(OutputFormat.FP16, s.outputFormat());
    assertEquals(3, s.gpuConcurrentTasks());
    assertEquals(1, s.gpuDevice());
    assertEquals(2, s.kernelOptions().threads());
  }

  @Test
  void everyValidatorUsesTheTemplate() {
    Map<String, String> bad =
        Map.of(
            "spark.q4.backend", "tpu",
            "spark.q4.batch.rows", "many",
            "spark.q4.onBadRow", "skip",
            "spark.q4.output.format", "bf16",
            "spark.q4.gpu.concurrentTasks", "0",
            "spark.q4.gpu.device", "-1",
            "spark.q4.cpu.threads", "0");
    Map<String, String> rules =
        Map.of(
            "spark.q4.backend", "one of [auto, cpu, cuda]",
            "spark.q4.batch.rows", "an integer between 1 and 131072",
            "spark.q4.onBadRow", "one of [fail, null]",
            "spark.q4.output.format", "one of [float, fp16]",
            "spark.q4.gpu.concurrentTasks", "a positive integer",
            "spark.q4.gpu.device", "a non-negative integer",
            "spark.q4.cpu.threads", "a positive integer");
    bad.forEach(
        (key, value) -> {
          IllegalArgumentException e =
              assertThrows(
                  IllegalArgumentException.class, () -> Q4Settings.from(Map.of(key, value)));
          assertEquals(
              "The value of " + key + " should be " + rules.get(key) + ", but was " + value,
              e.getMessage());
        });
  }

  @Test
  void unknownKeyNamesTheKnownKeys() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> Q4Conf.validate(Map.of("spark.q4.backnd", "cpu")));
    assertEquals(
        "spark.q4.backnd is not a q4spark configuration key; the known keys are " + Q4Conf.keys(),
        e.getMessage());
  }

  @Test
  void thePluginMustBeConfigured() {
    Q4Conf.requirePlugin("a.B, io.q4spark.spark.Q4SparkPlugin", "Q4.apply");
    IllegalStateException e =
        assertThrows(IllegalStateException.class, () -> Q4Conf.requirePlugin(null, "Q4.apply"));
    assertEquals(
        "Q4.apply needs q4spark's executor plugin: start Spark with"
            + " spark.plugins=io.q4spark.spark.Q4SparkPlugin (spark.plugins is unset)",
        e.getMessage());
  }

  @Test
  void documentationTableIsGeneratedAndCurrent() throws Exception {
    Path doc = Path.of("../docs/configuration.md");
    String expected =
        "# Configuration\n\nGenerated from `io.q4spark.spark.conf.Q4Conf`; a test fails when it is"
            + " stale.\n\n"
            + Q4Conf.markdownTable();
    if (Boolean.getBoolean("q4spark.regenerateDocs")) {
      Files.writeString(doc, expected);
    }
    assertEquals(
        expected,
        Files.readString(doc),
        "docs/configuration.md is stale: run ./mvnw -pl spark-plugin test -Dq4spark.regenerateDocs=true");
  }
}
