package io.q4spark.kernels.simd;

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
import java.util.EnumSet;
import java.util.List;

/**
 * W4A8 on the Vector API. The activations are quantized per token exactly as the reference does
 * ({@link PerTokenInt8Quantizer}); the GEMM then sums int8 codes times int4 codes exactly per group
 * in 16-bit lanes ({@link SimdW4A8Layer}), and scales in fp32:
 *
 * <pre>
 *   qx, xs    = per-token int8 codes and scale of each row
 *   isum(g,n) = sum over k in g of qx[m, k] * (code(k, n) - 8)      exact int32, = the reference's
 *   t(m, n)   = sum over g of float(isum(g, n)) * ws(g, n)          fp32
 *   out       = round_act(round_fp16(xs[m] * t(m, n) + bias[n]))    fp32 epilogue
 * </pre>
 *
 * The integer group sums are bit for bit the reference's; only the fp32 sum over groups and the
 * fp32 epilogue round, where the reference uses fp64. After the fp16 output rounding the two agree
 * to within one fp16 step.
 *
 * <p>Why 16-bit multiplies: the Vector API has no int8 dot product ({@code vpdpbusd}) or 16-bit
 * multiply-add ({@code vpmaddwd}), but a 16-bit lane holds an int8 x int4 product and 16 of them
 * summed, so one multiply and one add serve 32 lanes where an fp32 FMA serves 16 (and the fp32 path
 * also converts every code to float). Measured on the 2-core AVX-512 EPYC, one thread, K = N =
 * 4096: 0.45 ms at M = 1 and 5.0 ms at M = 16, against 0.63 and 7.8 ms for the fp32 streaming and
 * buffered paths over the same int8 codes (the previous version of this kernel).
 */
public final class SimdW4A8Kernel implements LinearKernel {
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
    return new Prepared(layer, options.threads());
  }

  /** A W4A8 layer: the quantization stage and the integer SIMD GEMM over the int8 codes. */
  static final class Prepared implements PreparedLinear, Int8ActivationStage {
    private final LinearLayerConfig config;
    private final SimdW4A8Layer gemm;

    Prepared(QuantizedLinear layer, int threads) {
      this.config = layer.config();
      this.gemm = new SimdW4A8Layer(layer, layer.scalesIn(config.actType()), threads);
    }

    @Override
    public LinearLayerConfig config() {
      return config;
    }

    @Override
    public String kernel() {
      return "SimdW4A8Kernel";
    }

    @Override
    public void quantizeActivations(float[] x, int rows, byte[] codes, float[] scales) {
      PerTokenInt8Quantizer.quantize(x, rows, config.k(), config.actType(), codes, scales);
    }

    @Override
    public void apply(float[] x, int rows, float[] bias, float[] out) {
      int k = config.k();
      int n = config.n();
      int np = gemm.nPadded();
      DType act = config.actType();
      Scratch scratch = SCRATCH.get();
      int chunk = Math.min(rows, SimdW4A16Layer.ROW_CHUNK);
      byte[] codes = scratch.codes(chunk * k);
      float[] xs = scratch.scales(chunk);
      // Row chunks bound the scratch (codes and the GEMM's pairs and sums) whatever M is.
      for (int r0 = 0; r0 < rows; r0 += chunk) {
        int c = Math.min(chunk, rows - r0);
        PerTokenInt8Quantizer.quantize(x, r0 * k, c, k, act, codes, xs);
        float[] acc = gemm.compute(codes, c, null);
        for (int m = 0; m < c; m++) {
          float scale = xs[m];
          int o = (r0 + m) * n;
          for (int nn = 0; nn < n; nn++) {
            // fp32 epilogue: the scaled group sums are already fp32, so a wider one would not be
            // exact either.
            float v = scale * acc[m * np + nn] + (bias == null ? 0f : bias[nn]);
            out[o + nn] = act.round(Float16.round(v));
          }
        }
      }
    }

    /** The exact group sums {@code isum(g, n)} of the GEMM ({@link SimdW4A8Layer#compute}). */
    int[] groupSums(byte[] codes, int rows) {
      int[] sums = new int[rows * gemm.groups() * gemm.nPadded()];
      gemm.compute(codes, rows, sums);
      return sums;
    }
  }

  /** Per-thread buffers for the quantized activations, reused across calls. */
  private static final class Scratch {
    private byte[] codes = new byte[0];
    private float[] scales = new float[0];

    byte[] codes(int size) {
      if (codes.length < size) {
        codes = new byte[size];
      }
      return codes;
    }

    float[] scales(int size) {
      if (scales.length < size) {
        scales = new float[size];
      }
      return scales;
    }
  }

  private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);
}
