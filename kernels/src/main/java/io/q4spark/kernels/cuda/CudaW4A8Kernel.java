package io.q4spark.kernels.cuda;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;

import io.q4spark.kernels.Acceptance;
import io.q4spark.kernels.DType;
import io.q4spark.kernels.Int8ActivationStage;
import io.q4spark.kernels.KernelCapabilities;
import io.q4spark.kernels.KernelOptions;
import io.q4spark.kernels.LinearKernel;
import io.q4spark.kernels.LinearLayerConfig;
import io.q4spark.kernels.PreparedLinear;
import io.q4spark.kernels.QuantScheme;
import io.q4spark.kernels.QuantizedLinear;
import io.q4spark.kernels.ScalarType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.EnumSet;
import java.util.List;

/**
 * W4A8 on NVIDIA integer tensor cores ({@code w4a8_gemm.cu}): each call quantizes the activations
 * per token to int8 on the device (the scalar reference's rounding, bit for bit), multiplies them
 * by the int4 codes with m16n8k32 s8 x u8 mma into exact int32 sums per group, folds the code
 * offset and the group's weight scale in per group, and applies the token's scale and the bias in
 * the epilogue; the output is fp16 as {@link io.q4spark.kernels.scalar.ScalarW4A8Kernel}'s, then
 * the activation dtype.
 *
 * <p>Layers: {@code int4} or {@code uint4b8} (symmetric); fp16, bf16 or fp32 activations (they are
 * quantized, so any float type works); group sizes 32, 64, 128, 256 and full K (a multiple of 32);
 * act-order through a permutation applied at prepare time.
 */
public final class CudaW4A8Kernel implements LinearKernel {
  private static final KernelCapabilities CAPABILITIES =
      new KernelCapabilities(
          QuantScheme.W4A8,
          List.of(ScalarType.INT4, ScalarType.UINT4B8),
          EnumSet.allOf(DType.class),
          new int[] {-1, 32, 64, 128, 256},
          true,
          8,
          8,
          false,
          true);

  /** K per integer mma step: a group must hold whole steps. */
  private static final int MMA_K = 32;

  /** Threads of the quantizer's per-row block. */
  private static final int QUANTIZE_THREADS = 256;

  @Override
  public KernelCapabilities capabilities() {
    return CAPABILITIES;
  }

  @Override
  public Acceptance canImplement(LinearLayerConfig config) {
    return CudaKernelSupport.canImplement(name(), capabilities(), config, MMA_K);
  }

  @Override
  public PreparedLinear prepare(QuantizedLinear layer, KernelOptions options) {
    CudaW4A8Layout layout = CudaW4A8Layout.pack(layer);
    return new Prepared(
        CudaDevice.shared(CudaOptions.defaults().withDeviceOrdinal(options.cudaDevice())),
        layer.config(),
        layout,
        null);
  }

  /** A W4A8 layer on the device. */
  static final class Prepared extends CudaPreparedLinear implements Int8ActivationStage {
    private final CudaW4A8Layout layout;
    private final DeviceBuffer weights;
    private final DeviceBuffer scales;
    private final DeviceBuffer permutation;
    private final CudaModule module;

    Prepared(
        CudaDevice device, LinearLayerConfig config, CudaW4A8Layout layout, CudaStream stream) {
      super(device, config, stream);
      this.layout = layout;
      try {
        this.weights = upload(layout.words());
        this.scales = upload(layout.scales());
        this.permutation = upload(layout.permutation());
      } catch (RuntimeException e) {
        close();
        throw e;
      }
      this.module = CudaPrograms.module(device, CudaSources.W4A8);
    }

    @Override
    public String kernel() {
      return "CudaW4A8Kernel";
    }

    CudaGemmPlan plan(int rows) {
      return CudaGemmPlan.w4a8(
          rows,
          layout.nPadded(),
          layout.kPadded(),
          layout.groupSize(),
          device.smCount(),
          (tile, threads, shared) -> blocksPerSm(module, "q4_w4a8_" + tile, threads, shared));
    }

    /**
     * The device quantizer's codes and scales, downloaded: conformance tests compare them bit for
     * bit with the reference's. Codes come back in the layer's input order (act-order undone).
     */
    @Override
    public synchronized void quantizeActivations(
        float[] x, int rows, byte[] codes, float[] scales) {
      device.makeCurrent();
      int k = config.k();
      int kp = layout.kPadded();
      DeviceBuffer dx = scratch("x", 4L * rows * k);
      try (Arena arena = Arena.ofConfined()) {
        dx.copyFrom(arena.allocateFrom(JAVA_FLOAT, java.util.Arrays.copyOf(x, rows * k)));
        DeviceBuffer deviceCodes = quantize(dx.address(), rows);
        stream().synchronize();
        MemorySegment hostCodes = arena.allocate((long) rows * kp);
        MemorySegment hostScales = arena.allocate(JAVA_FLOAT, rows);
        deviceCodes.copyTo(hostCodes);
        scratch("rowScale", 4L * rows).copyTo(hostScales);
        int[] perm = layout.permutation();
        for (int m = 0; m < rows; m++) {
          for (int j = 0; j < k; j++) {
            byte c = hostCodes.get(ValueLayout.JAVA_BYTE, (long) m * kp + j);
            codes[m * k + (perm == null ? j : perm[j])] = c;
          }
          scales[m] = hostScales.getAtIndex(JAVA_FLOAT, m);
        }
      }
    }

    /**
     * Queues the gather (act-order) and the per-token quantizer over {@code rows} fp32 rows at
     * {@code x}; returns the codes buffer ({@code rows * Kp}); the correction and row-scale buffers
     * are the workspace's {@code correction} and {@code rowScale}.
     */
    private DeviceBuffer quantize(long x, int rows) {
      int k = config.k();
      int kp = layout.kPadded();
      int groups = layout.scaleRows();
      x = gatherActOrder(module, permutation, x, rows);
      DeviceBuffer codes = scratch("codes", (long) rows * kp);
      DeviceBuffer correction = scratch("correction", 4L * rows * groups);
      DeviceBuffer rowScale = scratch("rowScale", 4L * rows);
      int act =
          switch (config.actType()) {
            case F16 -> 0;
            case BF16 -> 1;
            case F32 -> 2;
          };
      try (Arena a = launchArena()) {
        function(module, "q4_w4a8_quantize", 0)
            .launch(
                Dim3.of(rows),
                Dim3.of(QUANTIZE_THREADS),
                0,
                stream(),
                KernelArgs.of(a)
                    .ptr(x)
                    .ptr(codes)
                    .ptr(correction)
                    .ptr(rowScale)
                    .i32(k)
                    .i32(kp)
                    .i32(layout.groupSize())
                    .i32(groups)
                    .i32(act));
      }
      return codes;
    }

    @Override
    protected void run(long x, int rows, long bias, long y) {
      int n = config.n();
      DeviceBuffer out = scratch("c16", 2L * rows * n);
      gemm(x, rows, bias, out.address());
      long outCount = (long) rows * n;
      try (Arena a = launchArena()) {
        elementwise(
            module,
            "q4_half_to_f32",
            outCount,
            KernelArgs.of(a)
                .ptr(out)
                .ptr(y)
                .i64(outCount)
                .i32(0)
                .i32(config.actType() == DType.BF16 ? 1 : 0));
      }
    }

    @Override
    int gemmInputBytes() {
      return 4;
    }

    @Override
    void gemm(long x, int rows, long bias, long out) {
      int n = config.n();
      int kp = layout.kPadded();
      int groups = layout.scaleRows();
      DeviceBuffer codes = quantize(x, rows);
      DeviceBuffer correction = scratch("correction", 4L * rows * groups);
      DeviceBuffer rowScale = scratch("rowScale", 4L * rows);
      CudaGemmPlan plan = plan(rows);
      DeviceBuffer partial =
          plan.sharesTiles() ? scratch("partial", plan.partialBytes(rows, n)) : null;
      DeviceBuffer counters = plan.sharesTiles() ? counters(plan.counters()) : null;
      CudaFunction gemm = function(module, "q4_w4a8_" + plan.tile(), plan.sharedBytes());
      try (Arena a = launchArena()) {
        gemm.launch(
            new Dim3(plan.gridX(), plan.gridY(), plan.splits()),
            Dim3.of(plan.threads()),
            plan.sharedBytes(),
            stream(),
            KernelArgs.of(a)
                .ptr(codes)
                .ptr(correction)
                .ptr(rowScale)
                .ptr(weights)
                .ptr(scales)
                .ptr(bias)
                .ptr(out)
                .ptr(partial == null ? 0 : partial.address())
                .ptr(counters == null ? 0 : counters.address())
                .i32(rows)
                .i32(n)
                .i32(layout.nPadded())
                .i32(kp)
                .i32(layout.groupSize())
                .i32(groups)
                .i32(plan.kTilesPerSplit()));
      }
    }
  }
}
