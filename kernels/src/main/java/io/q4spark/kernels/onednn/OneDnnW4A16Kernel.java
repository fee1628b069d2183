package io.q4spark.kernels.onednn;

import io.q4spark.kernels.Acceptance;
import io.q4spark.kernels.DType;
import io.q4spark.kernels.KernelCapabilities;
import io.q4spark.kernels.KernelOptions;
import io.q4spark.kernels.LinearKernel;
import io.q4spark.kernels.LinearLayerConfig;
import io.q4spark.kernels.PreparedLinear;
import io.q4spark.kernels.QuantScheme;
import io.q4spark.kernels.QuantizedLinear;
import io.q4spark.kernels.ScalarType;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.EnumSet;
import java.util.List;
import org.bytedeco.javacpp.FloatPointer;

/**
 * W4A16 through oneDNN's weight-decompression matmul (JavaCPP's {@code org.bytedeco:dnnl} 3.13):
 * f32 activations times u4 weights with f32 scales per group, decompressed to f32 ({@code
 * fpmath_mode(strict, apply_to_int = true)}), see {@link OneDnnMatmul}:
 *
 * <pre>
 *   w(k, n)  = (code(k, n) - zero(g, n)) * scale(g, n)      g = k / G; zero = 8 for uint4b8
 *   acc      = sum over k of x[m, k] * w(k, n)               fp32, in oneDNN's order
 *   out      = round_out(acc), then round_out(out + bias[n])  bias added here, after the GEMM
 * </pre>
 *
 * Only fp32 activations: oneDNN's f16 and bf16 decompression paths on CPU round differently from
 * the reference (and fp16 scales fall back to the reference implementation), so fp16/bf16 layers
 * are left to the Java kernels. uint4b8 layers keep their codes with one zero point 8; uint4 layers
 * pass their per-group u4 zero points to oneDNN. Act-order is not implemented: oneDNN groups are
 * runs of G consecutive input features.
 *
 * <p>{@link #canImplement} asks oneDNN which implementation it would run for the layer's shapes (at
 * 1 row and at {@link OneDnnMatmul#MAX_ROWS} rows) and rejects a reference implementation, quoting
 * its name: on a CPU without a fast path a call would take seconds. On the 2-core AVX2 machine
 * oneDNN 3.13 picks {@code brg_matmul:avx2}: K = N = 4096, G = 128 in 3.19 / 6.54 / 61.5 ms at M =
 * 1 / 16 / 256 ({@code bench cpu}, 2 threads), 2.5 / 1.2 / 1.2 times ONNX Runtime's fp32 {@code
 * MatMulNBits}; at M = 1 it decompresses at 2.8 GB/s of int4 weights, far below the 36 GB/s DRAM
 * read rate, so it is compute-bound on the decompression.
 */
public final class OneDnnW4A16Kernel implements LinearKernel {
  private static final KernelCapabilities CAPABILITIES =
      new KernelCapabilities(
          QuantScheme.W4A16,
          List.of(ScalarType.UINT4B8, ScalarType.UINT4),
          EnumSet.of(DType.F32),
          null,
          true,
          8,
          8,
          true,
          false);

  /** Loads oneDNN's natives: a missing library makes this kernel unavailable, with the reason. */
  public OneDnnW4A16Kernel() {
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
    return probe(
        name(), shape(config), "a fast weight-decompression path needs AVX2 or newer", "f32 x u4");
  }

  /**
   * Rejects {@code shape} when oneDNN has no implementation for it or only a reference one, at 1
   * row or at {@link OneDnnMatmul#MAX_ROWS} rows, quoting what oneDNN reports.
   */
  static Acceptance probe(String kernel, OneDnnMatmul.Shape shape, String needs, String types) {
    for (int rows : new int[] {1, OneDnnMatmul.MAX_ROWS}) {
      String impl;
      try {
        impl = OneDnnMatmul.implementation(shape, rows);
      } catch (OneDnn.OneDnnException e) {
        return Acceptance.reject(e.getMessage());
      }
      if (OneDnn.isReference(impl)) {
        return Acceptance.reject(
            "oneDNN "
                + OneDnn.version()
                + " picked "
                + impl
                + " for "
                + types
                + " at M="
                + rows
                + " on this CPU (effective ISA "
                + OneDnn.effectiveIsa()
                + "); "
                + needs
                + " ("
                + kernel
                + ", "
                + shape.describe(rows)
                + ")");
      }
    }
    return Acceptance.accept();
  }

  /**
   * Calls of this many rows or more run faster here than on {@code SimdW4A16Kernel} where oneDNN
   * has an AVX-512 / AMX brgemm kernel for the layer: measured on the 2-core AVX-512 EPYC ({@code
   * brg_matmul:avx512_core}; bench cpu, K = N = 4096, G = 128, fp32, 2 threads, hot, median ms,
   * SimdW4A16Kernel / this kernel): 0.88 / 1.91 at 2 rows, 1.64 / 2.34 at 4, 3.65 / 2.75 at 8, 4.90
   * / 4.58 at 16, 7.30 / 6.17 at 32, 13.1 / 11.7 at 64.
   */
  static final int FASTER_FROM_ROWS = 8;

  /** {@link #FASTER_FROM_ROWS} where oneDNN runs an AVX-512 or AMX brgemm kernel, else 0. */
  @Override
  public int fasterFromRows(LinearLayerConfig config) {
    return OneDnnMatmul.hasWideBrgemm(shape(config)) ? FASTER_FROM_ROWS : 0;
  }

  static OneDnnMatmul.Shape shape(LinearLayerConfig config) {
    return new OneDnnMatmul.Shape(
        config.k(), config.n(), config.effectiveGroupSize(), false, config.zeroPoints());
  }

  @Override
  public PreparedLinear prepare(QuantizedLinear layer, KernelOptions options) {
    return new Prepared(layer, options.threads());
  }

  /** A layer in oneDNN memory. */
  static final class Prepared implements PreparedLinear {
    private final LinearLayerConfig config;
    private final OneDnnMatmul matmul;

    Prepared(QuantizedLinear layer, int threads) {
      this.config = layer.config();
      // The reference rounds scales to the activation dtype once (an identity for fp32).
      float[] scales = layer.scalesIn(config.actType());
      this.matmul =
          new OneDnnMatmul(
              shape(config),
              OneDnnU4Layout.pack(layer.weight()),
              scales,
              layer.zeros() == null ? null : OneDnnU4Layout.pack(layer.zeros()),
              threads);
    }

    @Override
    public LinearLayerConfig config() {
      return config;
    }

    @Override
    public String kernel() {
      return "OneDnnW4A16Kernel";
    }

    @Override
    public void apply(float[] x, int rows, float[] bias, float[] out) {
      int k = config.k();
      int n = config.n();
      OneDnnMatmul.Scratch scratch = OneDnnMatmul.Scratch.current();
      int chunk = Math.min(rows, OneDnnMatmul.MAX_ROWS);
      FloatPointer src = scratch.source((long) chunk * k);
      FloatPointer dst = scratch.output((long) chunk * n);
      for (int m0 = 0; m0 < rows; m0 += OneDnnMatmul.MAX_ROWS) {
        int m = Math.min(OneDnnMatmul.MAX_ROWS, rows - m0);
        src.put(x, m0 * k, m * k);
        matmul.run(scratch, m);
        dst.get(out, m0 * n, m * n);
        epilogue(out, m0, m, bias);
      }
    }

    /**
     * Rows in native memory: oneDNN reads them in place, through a pointer at each chunk's address
     * (the layer is fp32, so there is nothing to round).
     */
    @Override
    public void apply(MemorySegment x, int rows, float[] bias, float[] out) {
      int k = config.k();
      int n = config.n();
      OneDnnMatmul.Scratch scratch = OneDnnMatmul.Scratch.current();
      FloatPointer dst = scratch.output((long) Math.min(rows, OneDnnMatmul.MAX_ROWS) * n);
      for (int m0 = 0; m0 < rows; m0 += OneDnnMatmul.MAX_ROWS) {
        int m = Math.min(OneDnnMatmul.MAX_ROWS, rows - m0);
        FloatBuffer rowsHere =
            x.asSlice(4L * m0 * k, 4L * m * k)
                .asByteBuffer()
                .order(ByteOrder.nativeOrder())
                .asFloatBuffer();
        try (FloatPointer src = new FloatPointer(rowsHere)) {
          matmul.run(scratch, m, src);
        }
        dst.get(out, m0 * n, m * n);
        epilogue(out, m0, m, bias);
      }
    }

    @Override
    public boolean readsNativeMemory() {
      return true;
    }

    /** Rounds rows [m0, m0 + m) of {@code out} to the output dtype, adding the bias. */
    private void epilogue(float[] out, int m0, int m, float[] bias) {
      int n = config.n();
      DType outType = config.outType();
      if (bias == null && outType == DType.F32) {
        return;
      }
      for (int r = 0; r < m; r++) {
        int o = (m0 + r) * n;
        for (int j = 0; j < n; j++) {
          float y = outType.round(out[o + j]);
          out[o + j] = bias == null ? y : outType.round(y + bias[j]);
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
