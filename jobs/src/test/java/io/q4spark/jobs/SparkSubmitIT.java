package io.q4spark.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The shaded jar as {@code spark-submit} runs it: {@code org.apache.spark.deploy.SparkSubmit} (the
 * class the {@code spark-submit} script starts) in a JVM whose classpath is only what a Spark 4.2
 * installation ships (Spark and its dependencies, Jackson, SLF4J), given {@code --class
 * io.q4spark.jobs.Main} and the {@code -all} jar. Runs after {@code package} (failsafe), when the
 * jar exists.
 */
class SparkSubmitIT {
  @TempDir Path work;

  /** What a Spark installation's jars/ holds: the build's Spark classpath and Spark's own libs. */
  private static String sparkClassPath() throws IOException {
    Path launcher = Path.of("target", "launcher");
    List<String> entries = new ArrayList<>();
    for (String file : List.of("classpath", "provided.classpath")) {
      for (String e : Files.readString(launcher.resolve(file)).trim().split(":")) {
        // Not in a Spark installation: q4spark itself (it comes in the submitted jar), ONNX
        // Runtime (bench only) and oneDNN / JavaCPP (left out of the shaded jar).
        if (!e.contains("q4spark") && !e.contains("onnxruntime") && !e.contains("bytedeco")) {
          entries.add(e);
        }
      }
    }
    return String.join(":", entries);
  }

  @Test
  void theDemoRunsThroughSparkSubmit() throws Exception {
    Path jar = Path.of("target", "q4spark-jobs-0.1.0-SNAPSHOT-all.jar").toAbsolutePath();
    assertTrue(Files.isRegularFile(jar), jar + " is built by the package phase");
    String flags = System.getProperty("q4spark.jvm.flags");
    if (flags == null || flags.isBlank()) {
      fail(
          "system property q4spark.jvm.flags is not set: run through Maven (jobs/pom.xml sets it)");
    }
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    command.addAll(Arrays.asList(flags.trim().split("\\s+")));
    command.addAll(
        List.of(
            "-Xmx1g",
            "-cp",
            sparkClassPath(),
            "org.apache.spark.deploy.SparkSubmit",
            "--master",
            "local[2]",
            "--conf",
            "spark.ui.enabled=false",
            "--class",
            "io.q4spark.jobs.Main",
            jar.toString(),
            "demo",
            "--rows",
            "1024",
            "--dir",
            work.resolve("demo").toString()));
    Path log = work.resolve("spark-submit.log");
    Process p =
        new ProcessBuilder(command)
            .directory(work.toFile())
            .redirectErrorStream(true)
            .redirectOutput(log.toFile())
            .start();
    if (!p.waitFor(5, TimeUnit.MINUTES)) {
      p.destroyForcibly();
      fail("spark-submit did not end within 5 minutes; its output: " + tail(log));
    }
    String out = Files.readString(log);
    assertEquals(0, p.exitValue(), "spark-submit's exit status; its output: " + tail(log));
    assertTrue(
        Pattern.compile(
                "(?m)^demo: 1024 rows, [0-9]+ rows/s, max relative error [0-9.e+-]+ vs fp32"
                    + " reference$")
            .matcher(out)
            .find(),
        tail(log));
  }

  private static String tail(Path log) throws IOException {
    List<String> lines = Files.readAllLines(log);
    return lines.subList(Math.max(0, lines.size() - 40), lines.size()).stream()
        .collect(Collectors.joining("\n"));
  }
}
