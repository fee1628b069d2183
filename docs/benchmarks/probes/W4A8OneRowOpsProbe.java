import io.q4spark.kernels.DType;
import io.q4spark.kernels.KernelOptions;
import io.q4spark.kernels.LinearLayerConfig;
import io.q4spark.kernels.PreparedLinear;
import io.q4spark.kernels.QuantScheme;
import io.q4spark.kernels.RandomLayers;
import io.q4spark.kernels.ScalarType;
import io.q4spark.kernels.simd.SimdW4A8Kernel;
import java.util.Arrays;
import java.util.Random;

/**
 * Which operation bounds {@code SimdW4A8Layer}'s one-row loop: one-row W4A8 calls on a layer that
 * stays in L2 (K x N given, G = 128), on the given threads, five rounds, median and GMAC/s per
 * round. Run it against builds whose {@code oneRowFourPanels} drops one operation of the decode
 * (the results are then wrong; only the time matters), compiled into a folder put before the jar:
 *
 * <pre>
 *   javac --add-modules jdk.incubator.vector -cp kernels/target/test-classes:JAR W4A8OneRowOpsProbe.java
 *   java $(cat jobs/target/launcher/jvm.flags) -cp VARIANT:.:kernels/target/test-classes:JAR \
 *     W4A8OneRowOpsProbe 1024 1024 1
 * </pre>
 *
 * Results: {@code ../cpu-2026-12-02.md}, "What bounds W4A8's one-row loop".
 */
public class W4A8OneRowOpsProbe {
  public static void main(String[] args) throws Exception {
    int k = Integer.parseInt(args[0]);
    int n = Integer.parseInt(args[1]);
    int threads = Integer.parseInt(args[2]);
    LinearLayerConfig c =
        LinearLayerConfig.of(
            "probe", k, n, ScalarType.UINT4B8, DType.F32, 128, false, false, QuantScheme.W4A8);
    Random r = new Random(1);
    PreparedLinear layer =
        new SimdW4A8Kernel()
            .prepare(RandomLayers.layer(c, r, false), KernelOptions.defaults().withThreads(threads));
    float[] x = RandomLayers.activations(1, k, DType.F32, r);
    float[] y = new float[n];
    int calls = (int) Math.max(200, 2e9 / ((double) k * n));
    for (int round = 0; round < 5; round++) {
      double[] us = new double[calls];
      for (int i = 0; i < calls; i++) {
        long start = System.nanoTime();
        layer.apply(x, 1, null, y);
        us[i] = (System.nanoTime() - start) / 1e3;
      }
      Arrays.sort(us);
      System.out.printf(
          "round %d: median %.1f us, p10 %.1f us, %.1f GMAC/s%n",
          round, us[calls / 2], us[calls / 10], (double) k * n / us[calls / 2] / 1e3);
    }
  }
}
