package io.q4spark.jobs.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import io.q4spark.kernels.DType;
import io.q4spark.kernels.KernelOptions;
import io.q4spark.kernels.Q4Linear;
import io.q4spark.kernels.QuantScheme;
import java.nio.FloatBuffer;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The models {@link OnnxModelWriter} writes load in ONNX Runtime 1.29 and compute the layer our
 * scalar reference computes, from the same {@link BenchWeights}.
 */
class OnnxModelWriterTest {
  private static final int K = 256;
  private static final int N = 64;
  private static final int G = 128;
  private static final long SEED = 7;

  /** fp32 math on both sides, summed in different orders: a few ulps of the partial sums. */
  private static final double FP32_RELATIVE = 1e-4;

  /**
   * Outputs near zero come from cancellation; their error is that of the terms, so the relative
   * bound gets a floor of this fraction of the largest output.
   */
  private static final double CANCELLATION_FLOOR = 1e-6;

  /** accuracy_level 4 quantizes the activations to int8 per block: about 1% of the largest. */
  private static final double INT8_OF_LARGEST = 2e-2;

  private static OrtEnvironment env;
  private static BenchWeights weights;

  @BeforeAll
  static void environment() throws OrtException {
    env = OnnxRuntimeEnvironment.get(CpuBenchOptions.DEFAULT_THREADS);
    weights = BenchWeights.random(K, N, G, SEED);
  }

  /** Our scalar W4A16 reference with fp32 activations. */
  private static float[] reference(float[] x, int rows) {
    try (Q4Linear layer =
        Q4Linear.create(
            weights.layer(weights.config(QuantScheme.W4A16, DType.F32)),
            KernelOptions.defaults().withForced("ScalarW4A16Kernel").withThreads(1))) {
      assertEquals("ScalarW4A16Kernel", layer.kernel());
      return layer.apply(x, rows);
    }
  }

  private static float[] run(OrtSession s, float[] x, int rows) throws OrtException {
    try (OnnxTensor a = OnnxTensor.createTensor(env, FloatBuffer.wrap(x), new long[] {rows, K});
        OrtSession.Result r = s.run(Map.of(OnnxModelWriter.INPUT, a))) {
      OnnxTensor y = (OnnxTensor) r.get(0);
      assertArrayEquals(new long[] {rows, N}, y.getInfo().getShape());
      FloatBuffer fb = y.getFloatBuffer();
      float[] out = new float[fb.remaining()];
      fb.get(out);
      return out;
    }
  }

  private static double largest(float[] v) {
    double m = 0;
    for (float f : v) {
      m = Math.max(m, Math.abs(f));
    }
    return m;
  }

  private static void assertClose(float[] ref, float[] y, double relative, String what) {
    double floor = CANCELLATION_FLOOR * largest(ref);
    for (int i = 0; i < ref.length; i++) {
      double bound = relative * Math.abs(ref[i]) + floor;
      assertTrue(
          Math.abs(y[i] - ref[i]) <= bound,
          what
              + ": output "
              + i
              + " is "
              + y[i]
              + ", the reference "
              + ref[i]
              + " (seed "
              + SEED
              + ")");
    }
  }

  private static OrtSession session(byte[] model) throws OrtException {
    try (OrtSession.SessionOptions o = OnnxRuntimeEnvironment.sessionOptions()) {
      return env.createSession(model, o);
    }
  }

  @Test
  void matMulNBitsLoadsWithASymbolicRowDimension() throws OrtException {
    byte[] model =
        OnnxModelWriter.matMulNBits(
            K, N, G, 0, weights.matMulNBitsWeights(), weights.matMulNBitsScales());
    try (OrtSession s = session(model)) {
      NodeInfo in = s.getInputInfo().get(OnnxModelWriter.INPUT);
      TensorInfo t = (TensorInfo) in.getInfo();
      assertArrayEquals(new long[] {-1, K}, t.getShape());
      assertEquals(OnnxModelWriter.ROWS_DIM, t.getDimensionNames()[0]);
      TensorInfo out = (TensorInfo) s.getOutputInfo().get(OnnxModelWriter.OUTPUT).getInfo();
      assertEquals(OnnxModelWriter.ROWS_DIM, out.getDimensionNames()[0]);
      assertEquals(N, out.getShape()[1]);
    }
  }

  @Test
  void matMulNBitsAtAccuracyLevel0MatchesTheScalarReference() throws OrtException {
    byte[] model =
        OnnxModelWriter.matMulNBits(
            K,
            N,
            G,
            ShapeBackends.ACCURACY_FP32,
            weights.matMulNBitsWeights(),
            weights.matMulNBitsScales());
    try (OrtSession s = session(model)) {
      for (int rows : new int[] {1, 3, 17}) {
        float[] x = BenchWeights.activations(rows, K, DType.F32, SEED + rows);
        assertClose(reference(x, rows), run(s, x, rows), FP32_RELATIVE, "acc0 M=" + rows);
      }
    }
  }

  @Test
  void matMulNBitsAtAccuracyLevel4IsWithinInt8Error() throws OrtException {
    byte[] model =
        OnnxModelWriter.matMulNBits(
            K,
            N,
            G,
            ShapeBackends.ACCURACY_INT8,
            weights.matMulNBitsWeights(),
            weights.matMulNBitsScales());
    try (OrtSession s = session(model)) {
      for (int rows : new int[] {1, 5}) {
        float[] x = BenchWeights.activations(rows, K, DType.F32, SEED + rows);
        float[] ref = reference(x, rows);
        float[] y = run(s, x, rows);
        double bound = INT8_OF_LARGEST * largest(ref);
        double worst = 0;
        for (int i = 0; i < ref.length; i++) {
          worst = Math.max(worst, Math.abs(y[i] - ref[i]));
        }
        assertTrue(worst <= bound, "acc4 M=" + rows + ": max error " + worst + " > " + bound);
        // Not the fp32 path: int8 activations leave a visible error.
        assertTrue(worst > 0, "acc4 M=" + rows + " equals fp32 exactly");
      }
    }
  }

  @Test
  void fp32MatMulOnTheDequantizedWeightsMatchesTheScalarReference() throws OrtException {
    try (OrtSession s = session(OnnxModelWriter.matMul(K, N, weights.dequantized()))) {
      for (int rows : new int[] {1, 4}) {
        float[] x = BenchWeights.activations(rows, K, DType.F32, SEED + rows);
        assertClose(reference(x, rows), run(s, x, rows), FP32_RELATIVE, "MatMul M=" + rows);
      }
    }
  }

  @Test
  void matMulNBitsWeightsPackTwoCodesPerByteLowNibbleFirst() {
    byte[] b = weights.matMulNBitsWeights();
    assertEquals(N * K / 2, b.length);
    for (int n = 0; n < N; n++) {
      for (int k = 0; k < K; k++) {
        int block = k / G;
        int within = k % G;
        int packed = b[n * (K / G) * (G / 2) + block * (G / 2) + within / 2] & 0xFF;
        int code = (packed >>> (4 * (within % 2))) & 0xF;
        assertEquals(weights.codes().code(k, n), code, "code at k=" + k + ", n=" + n);
      }
    }
    float[] s = weights.matMulNBitsScales();
    for (int n = 0; n < N; n++) {
      for (int g = 0; g < K / G; g++) {
        assertEquals(weights.scales()[g * N + n], s[n * (K / G) + g]);
      }
    }
  }

  @Test
  void rejectsBlockSizesMatMulNBitsDoesNotHave() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> OnnxModelWriter.matMulNBits(K, N, 96, 0, new byte[0], new float[0]));
    assertEquals(
        "MatMulNBits block size must be a power of 2 in 16..256, but was 96", e.getMessage());
  }
}
