package io.q4spark.kernels.scalar;

import io.q4spark.kernels.DType;
import io.q4spark.kernels.KernelCapabilities;
import io.q4spark.kernels.KernelOptions;
import io.q4spark.kernels.LinearKernel;
import io.q4spark.kernels.LinearLayerConfig;
import io.q4spark.kernels.PreparedLinear;
import io.q4spark.kernels.QuantScheme;
import io.q4spark.kernels.QuantizedLinear;
import io.q4spark.kernels.ScalarType;
import io.q4spark.kernels.repack.Int4Layout;
import io.q4spark.kernels.repack.PackedInt4Matrix;
import java.util.EnumSet;
import java.util.List;

/**
 * The W4A16 reference: the executable specification of the math of vLLM's W4A16 kernels, in
 * straight loops. For every output (m, n):
 *
 * <pre>
 *   g      = gIdx == null ? k / G : gIdx[k]
 *   d      = code(k, n) - zero(g, n)                   exact int32, in [-15, 15]
 *   w      = round_act(d * scale(g, n))                one rounding to the activation dtype
 *   acc    = sum over k = 0, 1, ... of x[m, k] * w     fp32, in order of k
 *   out    = round_out(acc)                            one rounding to the output dtype
 *   out    = round_out(out + bias[n])                  bias added after the GEMM, as vLLM does
 * </pre>
 *
 * With fp16 or bf16 activations, {@code x * w} is exact in fp32 (11 + 11 significant bits at most),
 * so only the additions round. The weights are kept in the seed kernel's [K, N/8] layout. It
 * accepts every group size that divides K, zero points and act-order; it is the slowest kernel and
 * the last choice.
 */
public final class ScalarW4A16Kernel implements LinearKernel {
  private static final KernelCapabilities CAPABILITIES =
      new KernelCapabilities(
          QuantScheme.W4A16,
          List.of(ScalarType.UINT4B8, ScalarType.UINT4),
          EnumSet.allOf(DType.class),
          null,
          true,
          8,
          8,
          true,
          true);

  @Override
  public KernelCapabilities capabilities() {
    return CAPABILITIES;
  }

  @Override
  public PreparedLinear prepare(QuantizedLinear layer, KernelOptions options) {
    return new Prepared(layer);
  }

  private static final class Prepared implements PreparedLinear {
    private final LinearLayerConfig config;
    private final PackedInt4Matrix weight;
    private final PackedInt4Matrix zeros;
    private final float[] scales;
    private final int[] groupOf;
    private final int codeZero;

    Prepared(QuantizedLinear layer) {
      this.config = layer.config();
      this.weight = layer.weight().toLayout(Int4Layout.K_N8);
      this.zeros = layer.zeros() == null ? null : layer.zeros().toLayout(Int4Layout.K_N8);
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
      return "ScalarW4A16Kernel";
    }

    @Override
    public void apply(float[] x, int rows, float[] bias, float[] out) {
      int kDim = config.k();
      int nDim = config.n();
      DType act = config.actType();
      DType outType = config.outType();
      for (int m = 0; m < rows; m++) {
        for (int n = 0; n < nDim; n++) {
          float acc = 0f;
          for (int k = 0; k < kDim; k++) {
            int g = groupOf[k];
            int zero = zeros == null ? codeZero : zeros.code(g, n);
            int d = weight.code(k, n) - zero;
            float w = act.round(d * scales[g * nDim + n]);
            acc += x[m * kDim + k] * w;
          }
          float y = outType.round(acc);
          if (bias != null) {
            y = outType.round(y + bias[n]);
          }
          out[m * nDim + n] = y;
        }
      }
    }
  }
}
