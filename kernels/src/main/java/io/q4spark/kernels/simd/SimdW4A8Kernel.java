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
 * also converts every code to float). Measured on the 2-core AVX-512 EPYC, K = N = 4096, 2 threads,
 * {@code bench cpu} median: 0.21 ms at M = 1 and 3.1 ms at M = 16, against 0.37 and 4.4 for the
 * fp32 GEMM over the same int8 codes (this kernel's previous version). C2's own 16-bit multiply-add
 * idiom ({@code out[i] += a[2i] * b[2i] + a[2i+1] * b[2i+1]} over shorts) vectorizes only with the
 * sums in memory and reaches 13-18 GMAC/s per core there, against about 52 for this kernel's loop
 * ({@code docs/benchmarks/cpu-2026-12-02.md}). Calls of more than {@link #INT_MAX_ROWS} rows still
 * take that fp32 GEMM, which shares the packed weights.
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

  /**
   * Rows up to which the integer GEMM runs; more rows take the fp32 GEMM over the int8 codes (the
   * buffered 6-row micro-kernel, K-chunked so its activations stay in L2, where the integer
   * kernel's activations of all rows and the whole K do not). Measured, K = N = 4096, 2 threads,
   * median ms integer / fp32: 3.0 / 4.7 at M = 16, 5.6 / 7.1 at 32, 18.8 / 12.6 at 64, 30.4 / 23.9
   * at 128, 57 / 51 at 256.
   */
  static final int INT_MAX_ROWS = 32;

  /** A W4A8 layer: the quantization stage and the integer SIMD GEMM over the int8 codes. */
  static final class Prepared implements PreparedLinear, Int8ActivationStage {
    private final LinearLayerConfig config;
    private final SimdW4A8Layer gemm;

    /** The fp32 GEMM over the same packed weights, for calls of more than {@link #INT_MAX_ROWS}. */
    private final SimdW4A16Layer wide;

    Prepared(QuantizedLinear layer, int threads) {
      this.config = layer.config();
      float[] scales = layer.scalesIn(config.actType());
      this.gemm = new SimdW4A8Layer(layer, scales, threads);
      // The same weights seen as a W4A16 layer with fp32 activations: the int8 codes are exact fp32
      // values, and the scales are already in the model dtype.
      LinearLayerConfig inner =
          new LinearLayerConfig(
              config.layer(),
              config.fullK(),
              config.fullN(),
              config.k(),
              config.n(),
              config.weightType(),
              DType.F32,
              config.groupSize(),
              false,
              config.hasGIdx(),
              QuantScheme.W4A16);
      this.wide =
          new SimdW4A16Layer(
              new QuantizedLinear(inner, layer.weight(), scales, null, layer.gIdx(), null),
              threads,
              gemm.panels());
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
      float[] qx = rows > INT_MAX_ROWS ? scratch.activations(chunk * k) : null;
      // Row chunks bound the scratch (codes and the GEMM's pairs and sums) whatever M is.
      for (int r0 = 0; r0 < rows; r0 += chunk) {
        int c = Math.min(chunk, rows - r0);
        PerTokenInt8Quantizer.quantize(x, r0 * k, c, k, act, codes, xs);
        float[] acc;
        int stride;
        int base;
        if (c <= INT_MAX_ROWS) {
          acc = gemm.compute(codes, c, null);
          stride = np;
          base = 0;
        } else {
          for (int i = 0; i < c * k; i++) {
            qx[i] = codes[i];
          }
          wide.applyChunk(qx, 0, c, null, out, r0);
          acc = out;
          stride = n;
          base = r0 * n;
        }
        for (int m = 0; m < c; m++) {
          float scale = xs[m];
          int o = (r0 + m) * n;
          int a = base + m * stride;
          for (int nn = 0; nn < n; nn++) {
            // fp32 epilogue: the scaled group sums are already fp32, so a wider one would not be
            // exact either.
            float v = scale * acc[a + nn] + (bias == null ? 0f : bias[nn]);
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
    private float[] activations = new float[0];

    float[] activations(int size) {
      if (activations.length < size) {
        activations = new float[size];
      }
      return activations;
    }

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
