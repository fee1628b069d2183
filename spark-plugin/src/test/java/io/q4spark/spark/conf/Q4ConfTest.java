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
