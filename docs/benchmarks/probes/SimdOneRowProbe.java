import io.q4spark.kernels.DType;
import io.q4spark.kernels.KernelOptions;
import io.q4spark.kernels.LinearLayerConfig;
import io.q4spark.kernels.PreparedLinear;
import io.q4spark.kernels.QuantScheme;
import io.q4spark.kernels.RandomLayers;
import io.q4spark.kernels.ScalarType;
import io.q4spark.kernels.simd.SimdW4A16Kernel;
import java.util.Arrays;
import java.util.Random;

/**
 * A/B probe for one-row fp32 W4A16 calls: {@code SimdW4A16Kernel}'s prepared layer called directly
 * (no benchmark harness, no peers in the same process), K = N = 4096, G = 128, M = 1, over {@code
 * copies} layers in turn (1: hot; 14: 112 MiB of int4 weights, cold), on {@code threads} threads.
 * Five rounds of 400 calls, median and 10th percentile per round.
 *
 * <p>Run against two builds in alternating processes (the 2-core machine is shared; a round where
 * the OS puts both kernel threads on one core reads as the one-thread time):
 *
 * <pre>
 *   javac --add-modules jdk.incubator.vector -cp kernels/target/test-classes:JAR SimdOneRowProbe.java
 *   java $(cat jobs/target/launcher/jvm.flags) -cp .:kernels/target/test-classes:JAR SimdOneRowProbe 14 2
 * </pre>
 *
 * where JAR is the kernels jar of the build under test. Results: {@code ../cpu-2026-12-02.md}.
 */
public class SimdOneRowProbe {
  public static void main(String[] args) throws Exception {
    int copies = Integer.parseInt(args[0]);
    int threads = Integer.parseInt(args[1]);
    LinearLayerConfig c =
        LinearLayerConfig.of(
            "probe", 4096, 4096, ScalarType.UINT4B8, DType.F32, 128, false, false, QuantScheme.W4A16);
    Random r = new Random(1);
    PreparedLinear[] layers = new PreparedLinear[copies];
    for (int i = 0; i < copies; i++) {
      layers[i] =
          new SimdW4A16Kernel()
              .prepare(RandomLayers.layer(c, r, false), KernelOptions.defaults().withThreads(threads));
    }
    float[] x = RandomLayers.activations(1, c.k(), DType.F32, r);
    float[] out = new float[c.n()];
    for (int round = 0; round < 5; round++) {
      long[] t = new long[400];
      for (int i = 0; i < t.length; i++) {
        long s = System.nanoTime();
        layers[i % copies].apply(x, 1, null, out);
        t[i] = System.nanoTime() - s;
      }
      Arrays.sort(t);
      System.out.printf(
          "copies %d threads %d median %.3f ms p10 %.3f%n",
          copies, threads, t[t.length / 2] / 1e6, t[t.length / 10] / 1e6);
    }
  }
}
