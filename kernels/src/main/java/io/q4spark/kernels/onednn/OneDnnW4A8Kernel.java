package io.q4spark.kernels.onednn;

import io.q4spark.kernels.Acceptance;
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
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.FloatPointer;

/**
 * W4A8 through oneDNN's int8 matmul, mirroring vLLM's oneDNN {@code int4_gemm_w4a8} (the XPU kernel
 * behind {@code XPUW4A8IntLinearKernel}): activations quantized per token to s8 exactly as the
 * reference does ({@link PerTokenInt8Quantizer}), s8 source with one f32 scale per row ({@code
 * set_scales(SRC, mask 3, groups {1, K})}), s4 weights holding the int4 values (codes of int4 and
 * uint4b8 alike, minus 8; no zero point: with one, oneDNN 3.13 runs only its reference
 * implementation for s8 sources) and f32 scales per group ({@code set_scales(WEIGHTS, mask 3,
 * groups {G, 1})}); see {@link OneDnnMatmul}.
 *
 * <pre>
 *   qx, xs  = per-token int8 codes and scale of row m
 *   t(m, n) = xs[m] * sum over groups g of ws(g, n) * sum over k in g of qx[m, k] * (code(k, n) - 8)
 *   out     = round_act(round_fp16(t(m, n) + bias[n]))     oneDNN returns f32; the fp16 rounding
 *                                                            of vLLM's output happens here
 * </pre>
 *
 * oneDNN's fast int8 x int4 kernels need AVX-512, AVX2-VNNI or AMX; elsewhere it picks {@code
 * ref_int8:any}, seconds per call at K = N = 4096, and {@link #canImplement} rejects the layer with
 * that name as the reason. That is the outcome on the 2-core AVX2 machine.
 */
public final class OneDnnW4A8Kernel implements LinearKernel {
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
          false);

  /** Loads oneDNN's natives: a missing library makes this kernel unavailable, with the reason. */
  public OneDnnW4A8Kernel() {
    OneDnn.load();
  }

  @Override
  public KernelCapabilities capabilities() {
    return CAPABILITIES;
  }

  @Override
  public Acceptance canImplement(LinearLayerConfig config) {
    Acceptance a = LinearKernel.super.canImplement(config);
    if (!a.accepted()) {
      return a;
    }
    return OneDnnW4A16Kernel.probe(
        name(),
        shape(config),
        // Measured with this exact configuration: brg_matmul:avx10_1_512_amx on the GPU host's
        // Sapphire Rapids, ref_int8:any on the AVX2 machine.
        "an optimized s8 x s4 kernel with grouped weight scales needs AVX-512 with AMX or VNNI in"
            + " this oneDNN build (seen: brg_matmul on Sapphire Rapids, ref_int8 on AVX2)",
        "s8 x s4");
  }

  /**
   * Calls of this many rows or more run faster here than on {@code SimdW4A8Kernel} where oneDNN has
   * an AVX-512 / AMX brgemm kernel for the layer: measured on the 2-core AVX-512 EPYC ({@code
   * brg_matmul:avx512_core_vnni}; bench cpu, K = N = 4096, G = 128, fp32, 2 threads, hot, median
   * ms, SimdW4A8Kernel / this kernel): 0.54 / 2.93 at 2 rows, 1.97 / 3.26 at 8, 4.24 / 4.43 at 16
   * (level), 6.33 / 4.08 at 32, 13.4 / 7.19 at 64, 47.9 / 17.5 at 256.
   */
  static final int FASTER_FROM_ROWS = 32;

  /**
   * The same where oneDNN's kernel runs on AMX tiles: measured on the GPU host's 16-core Sapphire
   * Rapids ({@code brg_matmul:avx10_1_512_amx}; bench cpu as above but 16 threads, 2026-12-02):
   * 0.127 / 0.412 at 1 row, 0.685 / 0.522 at 4, 0.919 / 0.629 at 8, 1.47 / 0.656 at 16, 3.51 / 1.13
   * at 32, 18.0 / 4.89 at 256.
   */
  static final int FASTER_FROM_ROWS_AMX = 4;

  /**
   * {@link #FASTER_FROM_ROWS_AMX} where oneDNN runs the layer on AMX, {@link #FASTER_FROM_ROWS}
   * where on another AVX-512 brgemm kernel, else 0.
   */
  @Override
  public int fasterFromRows(LinearLayerConfig config) {
    OneDnnMatmul.Shape shape = shape(config);
    return OneDnnMatmul.hasWideBrgemm(shape)
        ? fasterFromRows(OneDnnMatmul.implementation(shape, OneDnnMatmul.MAX_ROWS))
        : 0;
  }

  /** The threshold for a wide brgemm implementation named {@code implementation}. */
  static int fasterFromRows(String implementation) {
    return implementation.contains("amx") ? FASTER_FROM_ROWS_AMX : FASTER_FROM_ROWS;
  }

  static OneDnnMatmul.Shape shape(LinearLayerConfig config) {
    return new OneDnnMatmul.Shape(config.k(), config.n(), config.effectiveGroupSize(), true, false);
  }

  @Override
  public PreparedLinear prepare(QuantizedLinear layer, KernelOptions options) {
    return new Prepared(layer, options.threads());
  }

  /** A W4A8 layer in oneDNN memory, with its quantization stage. */
  static final class Prepared implements PreparedLinear, Int8ActivationStage {
    private final LinearLayerConfig config;
    private final OneDnnMatmul matmul;

    Prepared(QuantizedLinear layer, int threads) {
      this.config = layer.config();
      // vLLM loads the weight scales in the model dtype: one rounding, as the reference.
      float[] scales = layer.scalesIn(config.actType());
      // s4: the stored codes are value + 8, so adding 8 again (mod 16) gives the value's
      // two's-complement nibble.
      this.matmul =
          new OneDnnMatmul(
              shape(config),
              OneDnnU4Layout.pack(layer.weight().addToEveryCode(OneDnnMatmul.SYMMETRIC_ZERO)),
              scales,
              null,
              threads);
    }

    @Override
    public LinearLayerConfig config() {
      return config;
    }

    @Override
    public String kernel() {
      return "OneDnnW4A8Kernel";
    }

    @Override
    public void quantizeActivations(float[] x, int rows, byte[] codes, float[] scales) {
      PerTokenInt8Quantizer.quantize(x, rows, config.k(), config.actType(), codes, scales);
    }

    @Override
    public void apply(float[] x, int rows, float[] bias, float[] out) {
      int k = config.k();
      int n = config.n();
      DType act = config.actType();
      OneDnnMatmul.Scratch scratch = OneDnnMatmul.Scratch.current();
      int chunk = Math.min(rows, OneDnnMatmul.MAX_ROWS);
      byte[] codes = scratch.heapCodes(chunk * k);
      float[] xs = scratch.heapScales(chunk);
      BytePointer src = scratch.int8Source((long) chunk * k);
      FloatPointer srcScales = scratch.sourceScales(chunk);
      FloatPointer dst = scratch.output((long) chunk * n);
      for (int m0 = 0; m0 < rows; m0 += OneDnnMatmul.MAX_ROWS) {
        int m = Math.min(OneDnnMatmul.MAX_ROWS, rows - m0);
        // Per token, so a chunk of rows quantizes on its own exactly as the whole would.
        PerTokenInt8Quantizer.quantize(x, m0 * k, m, k, act, codes, xs);
        src.put(codes, 0, m * k);
        srcScales.put(xs, 0, m);
        matmul.run(scratch, m);
        dst.get(out, m0 * n, m * n);
        for (int r = 0; r < m; r++) {
          int o = (m0 + r) * n;
          for (int j = 0; j < n; j++) {
            float v = out[o + j] + (bias == null ? 0f : bias[j]);
            out[o + j] = act.round(Float16.round(v));
          }
        }
      }
    }

    /** The implementation oneDNN runs for {@code rows} rows; for tests and {@code doctor}. */
    String implementation(int rows) {
      return matmul.implementation(rows);
    }

    @Override
    public void close() {
      matmul.close();
    }
  }
}
