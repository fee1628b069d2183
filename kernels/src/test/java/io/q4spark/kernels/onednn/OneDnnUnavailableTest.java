package io.q4spark.kernels.onednn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.q4spark.kernels.DType;
import io.q4spark.kernels.KernelCatalog;
import io.q4spark.kernels.KernelOptions;
import io.q4spark.kernels.KernelSelection;
import io.q4spark.kernels.KernelSelector;
import io.q4spark.kernels.LinearLayerConfig;
import io.q4spark.kernels.QuantScheme;
import io.q4spark.kernels.ScalarType;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Without oneDNN's natives the oneDNN kernels are unavailable with a reason, and selection goes on
 * to the next kernel: checked in a child JVM whose class path lacks the dnnl platform jar and whose
 * JavaCPP cache is empty.
 */
class OneDnnUnavailableTest {
  /** The child JVM's entry point: selects a layer the oneDNN kernel would otherwise take. */
  public static void main(String[] args) {
    LinearLayerConfig c =
        LinearLayerConfig.of(
            "layer", 256, 64, ScalarType.UINT4B8, DType.F32, 128, false, false, QuantScheme.W4A16);
    KernelOptions options =
        KernelOptions.defaults().withDisabled("SimdW4A16Kernel,TiledW4A16Kernel", "test");
    KernelSelection s = KernelSelector.select(c, options);
    for (KernelSelection.Outcome o : s.outcomes()) {
      System.out.println(o.kernel() + "|" + o.reason());
    }
    try {
      KernelCatalog.load("OneDnnW4A8Kernel");
      System.out.println("loaded");
    } catch (KernelCatalog.KernelUnavailableException e) {
      System.out.println("W4A8|" + e.getMessage());
    }
  }

  @Test
  void missingNativesBecomeAReasonAndSelectionGoesOn(@TempDir Path cache) throws Exception {
    String classPath =
        Arrays.stream(System.getProperty("java.class.path").split(File.pathSeparator))
            .filter(e -> !(e.contains("dnnl-") && e.contains("linux-x86_64")))
            .collect(Collectors.joining(File.pathSeparator));
    Path out = cache.resolve("out.txt");
    Process p =
        new ProcessBuilder(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED",
                "-Dorg.bytedeco.javacpp.cachedir=" + cache.resolve("javacpp"),
                "-cp",
                classPath,
                OneDnnUnavailableTest.class.getName())
            .redirectErrorStream(true)
            .redirectOutput(out.toFile())
            .start();
    assertTrue(p.waitFor(60, TimeUnit.SECONDS), "child JVM did not finish");
    List<String> lines = Files.readAllLines(out, StandardCharsets.UTF_8);
    lines.forEach(System.out::println);
    assertEquals(0, p.exitValue(), String.join("\n", lines));
    String onednn =
        lines.stream().filter(l -> l.startsWith("OneDnnW4A16Kernel|")).findFirst().orElseThrow();
    String reason =
        "could not be loaded: java.lang.UnsatisfiedLinkError: oneDNN's natives could not be loaded"
            + " (java.lang.UnsatisfiedLinkError: no jnidnnl in java.library.path";
    String fix =
        "the class path needs org.bytedeco:dnnl:3.13-1.5.14, javacpp:1.5.14 and"
            + " opencl:3.0-1.5.13, each with its platform jar (classifier linux-x86_64; other"
            + " platforms are not shipped)";
    assertTrue(onednn.startsWith("OneDnnW4A16Kernel|OneDnnW4A16Kernel " + reason), onednn);
    assertTrue(onednn.endsWith(fix), onednn);
    assertTrue(lines.contains("ScalarW4A16Kernel|null"), String.join("\n", lines));
    // The second kernel gets the same reason, not a bare NoClassDefFoundError.
    String w4a8 = lines.stream().filter(l -> l.startsWith("W4A8|")).findFirst().orElseThrow();
    assertTrue(w4a8.startsWith("W4A8|OneDnnW4A8Kernel " + reason), w4a8);
  }
}
