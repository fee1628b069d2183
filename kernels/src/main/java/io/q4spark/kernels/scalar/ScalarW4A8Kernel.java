package io.q4spark.kernels.scalar;

import io.q4spark.kernels.DType;
import io.q4spark.kernels.Float16;
import io.q4spark.kernels.Int8ActivationStage;
import io.q4spark.kernels.KernelCapabilities;
import io.q4spark.kernels.KernelOptions;
import io.q4spark.kernels.LinearKernel;
import io.q4spark.kernels.LinearLayerConfig;
import io.q4spark.kernels.PreparedLinear;
import io.q4spark.kernels.QuantScheme;
import io.q4spark.kernels.QuantizedLinear;
import io.q4spark.kernels.ScalarType;
import io.q4spark.kernels.quantize.PerTokenInt8Quantizer;
import io.q4spark.kernels.repack.Int4Layout;
import io.q4spark.kernels.repack.PackedInt4Matrix;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The W4A8 reference, after vLLM's {@code XPUW4A8IntLinearKernel}: activations quantized per token
 * to int8 ({@link PerTokenInt8Quantizer}), int4 weights, exact integer dot products per group,
 * scales applied per group, bias fused, and the result rounded once to fp16 (the oneDNN op's output
 * type), then cast to the activation dtype:
 *
 * <pre>
 *   qx, xs       = per-token int8 codes and scale of row m
 *   d(k, n)      = code(k, n) - 8                              int4 value in [-8, 7]
 *   isum(g, n)   = sum over k in group g of qx[k] * d(k, n)    exact int32
 *   v            = xs * sum over g of isum(g, n) * ws(g, n) + bias[n]     in fp64 (exact to ~1e-16)
 *   out          = round_act(round_fp16(v))                    fp16 first: values past 65504 are inf
 * </pre>
 *
 * Weights stay in the seed's [N, K/8] layout. It accepts int4 and uint4b8 (both symmetric, the same
 * values), any group size that divides K, and act-order.
 */
public final class ScalarW4A8Kernel implements LinearKernel {
  private static final Logger LOG = LoggerFactory.getLogger(ScalarW4A8Kernel.class);
  private static final AtomicBoolean WARNED_NON_FP16 = new AtomicBoolean();

  private static final KernelCapabilities CAPABILITIES =
      new KernelCapabilities(
          QuantScheme.W4A8,
          List.of(ScalarType.INT4, ScalarType.UINT4B8),
          EnumSet.allOf(DType.class),
          null,
          true,
          8,
          8,
          false,
          true);

  @Override
  public KernelCapabilities capabilities() {
    return CAPABILITIES;
  }

  @Override
  public PreparedLinear prepare(QuantizedLinear layer, KernelOptions options) {
    DType act = layer.config().actType();
    if (act != DType.F16 && WARNED_NON_FP16.compareAndSet(false, true)) {
      LOG.warn(
          "W4A8 layer {} runs with model dtype {}, but the W4A8 GEMM produces float16 output, which"
              + " is then cast: set the model dtype to float16 to avoid the extra rounding and the"
              + " overflow of values above 65504.",
          layer.config().layer(),
          act);
    }
    return new Prepared(layer);
  }

  /** The layer in the seed's W4A8 layout. */
  public static final class Prepared implements PreparedLinear, Int8ActivationStage {
    private final LinearLayerConfig config;
    private final PackedInt4Matrix weight;
    private final float[] scales;
    private final int[] groupOf;
    private final int codeZero;

    Prepared(QuantizedLinear layer) {
      this.config = layer.config();
      this.weight = layer.weight().toLayout(Int4Layout.N_K8);
      this.scales = layer.scalesIn(config.actType());
      this.groupOf = layer.groups();
      this.codeZero = QuantizedLinear.codeZero(config.weightType());
    }

    @Override
    public LinearLayerConfig config() {
      return config;
    }

    @Override
    public String kernel() {
      return "ScalarW4A8Kernel";
    }

    @Override
    public void apply(float[] x, int rows, float[] bias, float[] out) {
      double[] exact = applyUnrounded(x, rows, bias);
      DType act = config.actType();
      for (int i = 0; i < exact.length; i++) {
        out[i] = act.round(Float16.round(exact[i]));
      }
    }

    @Override
    public void quantizeActivations(float[] x, int rows, byte[] codes, float[] scales) {
      PerTokenInt8Quantizer.quantize(x, rows, config.k(), config.actType(), codes, scales);
    }

    /** The GEMM's value before the fp16 rounding, {@code v} above; for conformance tests. */
    public double[] applyUnrounded(float[] x, int rows, float[] bias) {
      int kDim = config.k();
      int nDim = config.n();
      int groups = config.numGroups();
      byte[] qx = new byte[rows * kDim];
      float[] xs = new float[rows];
      quantizeActivations(x, rows, qx, xs);
      double[] result = new double[rows * nDim];
      long[] isum = new long[groups];
      for (int m = 0; m < rows; m++) {
        for (int n = 0; n < nDim; n++) {
          groupSums(qx, m, n, isum);
          double acc = 0;
          for (int g = 0; g < groups; g++) {
            acc += isum[g] * (double) scales[g * nDim + n];
          }
          double v = acc * xs[m];
          if (bias != null) {
            v += bias[n];
          }
          result[m * nDim + n] = v;
        }
      }
      return result;
    }

    /**
     * The exact integer group sums {@code isum(g, n)} above of every row, for conformance tests of
     * kernels that sum in integers: {@code result[(m * groups + g) * N + n]}.
     */
    public long[] groupSums(byte[] qx, int rows) {
      int groups = config.numGroups();
      int nDim = config.n();
      long[] result = new long[rows * groups * nDim];
      long[] isum = new long[groups];
      for (int m = 0; m < rows; m++) {
        for (int n = 0; n < nDim; n++) {
          groupSums(qx, m, n, isum);
          for (int g = 0; g < groups; g++) {
            result[(m * groups + g) * nDim + n] = isum[g];
          }
        }
      }
      return result;
    }

    /** {@code isum(g, n)} of row {@code m} for every group g. */
    private void groupSums(byte[] qx, int m, int n, long[] isum) {
      int kDim = config.k();
      Arrays.fill(isum, 0);
      for (int k = 0; k < kDim; k++) {
        int d = weight.code(k, n) - codeZero;
        isum[groupOf[k]] += qx[m * kDim + k] * d;
      }
    }
  }
}
