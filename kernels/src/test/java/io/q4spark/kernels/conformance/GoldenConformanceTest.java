package io.q4spark.kernels.conformance;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.q4spark.kernels.QuantScheme;
import io.q4spark.kernels.QuantizedLinear;
import io.q4spark.kernels.scalar.ScalarW4A8Kernel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * Every golden vector through every available kernel from every layout it holds. The folder comes
 * from the system property {@code q4spark.golden.dir} (the build sets it to {@code
 * ../shared/golden}); where it is absent the tests are skipped with that message. Setting {@code
 * q4spark.golden.required=true} turns the skip into a failure.
 */
class GoldenConformanceTest {
  /** The fp64 reference and our unrounded W4A8 value differ only by summation order. */
  private static final double W4A8_FP64_RELATIVE = 1e-9;

  static Path goldenDir() {
    Path dir = Path.of(System.getProperty("q4spark.golden.dir", "../shared/golden"));
    boolean present = Files.isDirectory(dir) && !GoldenConformance.files(dir).isEmpty();
    if (!present && Boolean.getBoolean("q4spark.golden.required")) {
      throw new AssertionError("golden vectors required but absent: " + dir.toAbsolutePath());
    }
    assumeTrue(present, "golden vectors absent: no .safetensors in " + dir.toAbsolutePath());
    return dir;
  }

  @TestFactory
  Stream<DynamicTest> everyFileLayoutAndKernel() {
    Path dir = goldenDir();
    return GoldenConformance.files(dir).stream()
        .map(
            f ->
                DynamicTest.dynamicTest(
                    f.getFileName().toString(),
                    () -> {
                      List<GoldenConformance.Result> results = GoldenConformance.run(f);
                      long ran = results.stream().filter(GoldenConformance.Result::ran).count();
                      assertTrue(
                          ran >= 2, "each file runs through at least two layouts: " + results);
                      for (GoldenConformance.Result r : results) {
                        System.out.println(r.row());
                        assertFalse(r.ran() && !r.passed(), r.row());
                      }
                    }));
  }

  @TestFactory
  Stream<DynamicTest> w4a8ReferenceMatchesTheFp64ReferenceAndTheActivationCodes() {
    Path dir = goldenDir();
    return GoldenConformance.files(dir).stream()
        .filter(f -> f.getFileName().toString().startsWith("w4a8"))
        .map(
            f ->
                DynamicTest.dynamicTest(
                    f.getFileName().toString(),
                    () -> {
                      try (GoldenCase c = GoldenCase.open(f)) {
                        assertEquals(QuantScheme.W4A8, c.scheme());
                        QuantizedLinear layer = c.layouts().get(0).reader().get();
                        ScalarW4A8Kernel.Prepared p =
                            (ScalarW4A8Kernel.Prepared) new ScalarW4A8Kernel().prepare(layer);
                        float[] x = c.input();
                        byte[] codes = new byte[x.length];
                        float[] scales = new float[c.rows()];
                        p.quantizeActivations(x, c.rows(), codes, scales);
                        assertArrayEquals(c.expectedActivationCodes(), codes);
                        assertArrayEquals(c.expectedActivationScales(), scales);
                        double[] v = p.applyUnrounded(x, c.rows(), layer.bias());
                        double[] ref = c.referenceOutput();
                        for (int i = 0; i < v.length; i++) {
                          assertEquals(
                              ref[i],
                              v[i],
                              W4A8_FP64_RELATIVE * Math.max(1, Math.abs(ref[i])),
                              "at " + i);
                        }
                      }
                    }));
  }
}
