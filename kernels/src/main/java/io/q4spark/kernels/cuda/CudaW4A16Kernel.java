package io.q4spark.kernels.cuda;

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
import java.lang.foreign.Arena;
import java.util.EnumSet;
import java.util.List;

/**
 * W4A16 on NVIDIA tensor cores ({@code w4a16_gemm.cu}), Marlin-class: int4 weights streamed once
 * through a cp.async pipeline with an L2 evict-first hint, dequantized in registers with the
 * reference's single rounding, m16n8k16 fp16/bf16 mma with fp32 accumulation, split-K when a call
 * has too few output tiles to fill the SMs. Up to 64 rows a separate kernel reads the same packed
 * weights as the mma's A operand (16 output columns per mma, the rows on the n8 side), each warp
 * streaming its own chunks through shared memory; on sm_90 and newer, calls of 8 to 16 rows on
 * large layers take the ring kernels instead (one block per SM, a producer warp filling a ring of
 * shared-memory stages with bulk copies, an equal share of the weights per SM: {@link
 * CudaGemmPlan#ringPays}); the tiled kernels take 17-64 rows where the small-M kernel's shared
 * memory does not fit. On sm_90a (Hopper) calls of {@link #WGMMA_MIN_ROWS} to {@link
 * #WGMMA_BELOW_ROWS} - 1 rows take the wgmma kernels ({@code w4a16_wgmma.cu}: warpgroup MMA with
 * the weights dequantized in registers, a producer warpgroup's bulk copies, stream-K where the
 * tiles do not fill whole waves). Elsewhere, from {@link CudaDequantGemm#MIN_ROWS} rows on, a call
 * instead dequantizes the weights once into 16-bit scratch and multiplies with cuBLAS ({@link
 * CudaDequantGemm}), where that dense GEMM is faster. The math is {@link
 * io.q4spark.kernels.scalar.ScalarW4A16Kernel}'s except for the order of the fp32 additions.
 *
 * <p>Layers: {@code uint4b8}, or {@code uint4} with zero points; fp16 or bf16 activations (the
 * tensor cores take 16-bit inputs; fp32 layers stay on the CPU kernels); group sizes 32, 64, 128,
 * 256 and full K (a multiple of 16); act-order through a permutation applied at prepare time; any K
 * and N that are multiples of 8 (padded on the device to the 64-wide tiles).
 */
public final class CudaW4A16Kernel implements LinearKernel {
  private static final KernelCapabilities CAPABILITIES =
      new KernelCapabilities(
          QuantScheme.W4A16,
          List.of(ScalarType.UINT4B8, ScalarType.UINT4),
          EnumSet.of(DType.F16, DType.BF16),
          new int[] {-1, 32, 64, 128, 256},
          true,
          8,
          8,
          true,
          true);

  /**
   * JVM property choosing the kernel of calls of up to 16 rows on sm_90 and newer: {@code auto}
   * (the default: {@link CudaGemmPlan#ringPays}), {@code ring} (the bulk-copy ring kernels whenever
   * the device has them) or {@code warps} (the per-warp cp.async kernel that older GPUs run), for
   * comparisons.
   */
  static final String SMALL_KERNEL_PROPERTY = "q4spark.cuda.smallKernel";

  /**
   * JVM property choosing the kernel of calls of more than 64 rows on sm_90a devices: {@code auto}
   * (the default: the wgmma kernels, {@code w4a16_wgmma.cu}, below {@link #WGMMA_BELOW_ROWS} rows),
   * {@code wgmma} (those kernels from 17 rows on, taking 17-64 rows from the small-M kernel too) or
   * {@code cublas} (dequantize, then cuBLAS, as on other GPUs), for comparisons.
   */
  static final String MANY_ROWS_KERNEL_PROPERTY = "q4spark.cuda.manyRowsKernel";

  /**
   * JVM property forcing the wgmma block's rows (64, 128 or 256; unset: {@link
   * CudaGemmPlan#wgmmaTileRows}), for comparisons.
   */
  static final String WGMMA_ROWS_PROPERTY = "q4spark.cuda.wgmmaRows";

  /**
   * JVM property: {@code true} runs a wgmma call whose tiles do not fill their waves as whole waves
   * of one tile per block, then stream-K over the rest, instead of stream-K over every tile ({@link
   * CudaGemmPlan#w4a16Wgmma}). Off by default until it is measured on the H200: written to cut
   * stream-K's shared tiles (4096x6144 at 1024 rows: 192 tiles of 256 rows over 132 SMs).
   */
  static final String WGMMA_HYBRID_PROPERTY = "q4spark.cuda.wgmmaHybrid";

  /**
   * Rows from which the wgmma kernels take calls by default. Measured on the H200 (µs, wgmma with
   * 64-row blocks / the per-warp small-M kernel, 64 rows): 18.5 / 21.9 (4096x4096), 22.0 / 28.4
   * (4096x6144), 37.8 / 53.9 (4096x14336), 37.6 / 53.9 (14336x4096); at 32 rows the per-warp
   * kernel's 17.2-34.4 µs are about what the wgmma kernel takes for 64.
   */
  static final int WGMMA_MIN_ROWS = 49;

  /**
   * From this many rows on, calls go back to dequantize + cuBLAS: measured on the H200 (µs, wgmma /
   * dequantize + cuBLAS, same run): at 8192 rows 422.9 / 382.8 (4096x4096), 647.9 / 613.7, 1681.5 /
   * 1473.9, 1548.9 / 1456.1; at 1024 rows 54.6 / 61.4, 103.1 / 91.4, 209.3 / 213.1, 171.9 / 195.0
   * (4096x4096, 4096x6144, 4096x14336, 14336x4096).
   */
  static final int WGMMA_BELOW_ROWS = 4096;

  /** {@link #MANY_ROWS_KERNEL_PROPERTY}'s value, checked. */
  private static String manyRowsKernelChoice() {
    return choice(MANY_ROWS_KERNEL_PROPERTY, "auto", "wgmma", "cublas");
  }

  /** JVM property {@code property}, {@code auto} when unset, else one of {@code values}. */
  private static String choice(String property, String... values) {
    String value = System.getProperty(property, "auto");
    if (!List.of(values).contains(value)) {
      throw new IllegalArgumentException(
          property + " should be one of " + String.join(", ", values) + ", but was " + value);
    }
    return value;
  }

  /**
   * Whether a call of {@code rows} rows takes the wgmma kernels on a device that has them, as
   * {@link #MANY_ROWS_KERNEL_PROPERTY} says.
   */
  static boolean wgmmaChosen(int rows) {
    return switch (manyRowsKernelChoice()) {
      case "auto" -> rows >= WGMMA_MIN_ROWS && rows < WGMMA_BELOW_ROWS;
      case "wgmma" -> rows > CudaGemmPlan.RING_MAX_ROWS;
      default -> false;
    };
  }

  /**
   * Whether a call of {@code rows} (at most 16) rows on a layer of {@code nPadded x kPadded} takes
   * a ring kernel on a device with {@code sms} SMs that has them, as {@link #SMALL_KERNEL_PROPERTY}
   * says.
   */
  static boolean ringChosen(int rows, int nPadded, int kPadded, int sms) {
    return switch (smallKernelChoice()) {
      case "auto" -> CudaGemmPlan.ringPays(rows, nPadded, kPadded, sms);
      case "ring" -> true;
      default -> false;
    };
  }

  /** {@link #SMALL_KERNEL_PROPERTY}'s value, checked. */
  private static String smallKernelChoice() {
    return choice(SMALL_KERNEL_PROPERTY, "auto", "ring", "warps");
  }

  /**
   * Why a device of compute capability {@code cc} (10 * major + minor) whose blocks may have {@code
   * sharedOptin} bytes of shared memory cannot run the ring kernels, or null when it can: bulk
   * copies and mbarrier transaction counts need sm_90, and the ring's stages need a Hopper or
   * data-center Blackwell SM's shared memory (sm_120 parts have about 100 KiB).
   */
  static String ringUnavailable(int cc, int sharedOptin) {
    if (cc < 90) {
      return "the ring kernels need sm_90 (bulk copies), the device is sm_" + cc;
    }
    int needed = CudaGemmPlan.ringSharedBytes(2, true);
    if (sharedOptin < needed) {
      return "the ring kernels need "
          + needed
          + " bytes of shared memory per block, the device allows "
          + sharedOptin;
    }
    return null;
  }

  /**
   * Which kernel takes W4A16 calls of up to 64 rows on {@code device}, and why, for {@code doctor}:
   * up to 16 the ring kernels where they pay ({@link CudaGemmPlan#ringPays}), the per-warp kernel
   * elsewhere; 17 to 64 the per-warp kernel with four or eight B tiles where its shared memory
   * fits.
   */
  public static String smallRowsKernels(CudaDevice device) {
    return smallRowsKernels(
        device.computeCapability(), device.maxSharedMemoryPerBlockOptin(), smallKernelChoice());
  }

  static String smallRowsKernels(int cc, int sharedOptin, String choice) {
    String why = ringUnavailable(cc, sharedOptin);
    String upTo16;
    if (why != null) {
      upTo16 = "W4A16 at 1-16 rows: the per-warp kernel (" + why + ")";
    } else {
      upTo16 =
          switch (choice) {
            case "ring" ->
                "W4A16 at 1-16 rows: the ring kernels (" + SMALL_KERNEL_PROPERTY + "=ring)";
            case "warps" ->
                "W4A16 at 1-16 rows: the per-warp kernel (" + SMALL_KERNEL_PROPERTY + "=warps)";
            default ->
                "W4A16 at "
                    + CudaGemmPlan.RING_MIN_ROWS
                    + "-16 rows on layers of at least "
                    + CudaGemmPlan.RING_MIN_CHUNKS_PER_SM
                    + " 64x64 weight chunks per SM: the ring kernels (bulk copies); other calls of"
                    + " up to 16 rows: the per-warp kernel";
          };
    }
    return upTo16 + manyTiles(4, sharedOptin) + manyTiles(8, sharedOptin);
  }

  /**
   * Which kernel takes W4A16 calls of more than 48 rows on {@code device}, and why, for {@code
   * doctor}: the wgmma kernels on sm_90a devices ({@link #WGMMA_MIN_ROWS} to {@link
   * #WGMMA_BELOW_ROWS} - 1 rows, as {@link #MANY_ROWS_KERNEL_PROPERTY} says), dequantize + cuBLAS
   * beyond and on other GPUs.
   */
  public static String manyRowsKernels(CudaDevice device) {
    return manyRowsKernels(device.hasWgmma(), device.arch(), manyRowsKernelChoice());
  }

  static String manyRowsKernels(boolean wgmma, String arch, String choice) {
    String cublas = "dequantize + cuBLAS from " + CudaDequantGemm.MIN_ROWS + " rows";
    if (!wgmma) {
      return "W4A16 past 64 rows: "
          + cublas
          + " (the wgmma kernels need sm_90a, the device is "
          + arch
          + ")";
    }
    return switch (choice) {
      case "wgmma" ->
          "W4A16 from 17 rows: the wgmma kernels (" + MANY_ROWS_KERNEL_PROPERTY + "=wgmma)";
      case "cublas" ->
          "W4A16 past 64 rows: " + cublas + " (" + MANY_ROWS_KERNEL_PROPERTY + "=cublas)";
      default ->
          "W4A16 at "
              + WGMMA_MIN_ROWS
              + "-"
              + (WGMMA_BELOW_ROWS - 1)
              + " rows: the wgmma kernels (sm_90a, weights dequantized in registers); from "
              + WGMMA_BELOW_ROWS
              + " rows: dequantize + cuBLAS";
    };
  }

  /** Which kernel takes the calls the small-M kernel's {@code tiles} B tiles would, and why. */
  private static String manyTiles(int tiles, int sharedOptin) {
    int needed = CudaGemmPlan.smallSharedBytes(tiles, true);
    String rows = (4 * tiles + 1) + "-" + 8 * tiles + " rows: ";
    return sharedOptin >= needed
        ? "; " + rows + "the per-warp kernel with " + tiles + " B tiles"
        : "; "
            + rows
            + "the medium tile (the per-warp kernel's "
            + tiles
            + "-tile slots need "
            + needed
            + " bytes of shared memory per block, the device allows "
            + sharedOptin
            + ")";
  }

  /** K per mma step: a group must hold whole steps. */
  private static final int MMA_K = 16;

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
    CudaW4A16Layout layout = CudaW4A16Layout.pack(layer);
    return new Prepared(
        CudaDevice.shared(CudaOptions.defaults().withDeviceOrdinal(options.cudaDevice())),
        layer.config(),
        layout,
        null);
  }

  /** A W4A16 layer on the device. */
  static final class Prepared extends CudaPreparedLinear {
    private final CudaW4A16Layout layout;
    private final DeviceBuffer weights;
    private final DeviceBuffer scales;
    private final DeviceBuffer zeros;

    /**
     * Strip-major copies of the scales and zero points for the ring kernels, where the device can
     * run them ({@link #ringUnavailable}; null elsewhere): 1/32 of the int4 weights' bytes at G =
     * 128 (fp16 scales).
     */
    private final DeviceBuffer scalesByStrip;

    private final DeviceBuffer zerosByStrip;
    private final DeviceBuffer permutation;
    private final CudaModule module;

    /**
     * The wgmma kernels' module where the device runs them ({@link CudaDevice#hasWgmma}), else
     * null.
     */
    private final CudaModule wgmmaModule;

    private final boolean bf16;
    private final int groupShift;

    /**
     * Tests set this to run the ring kernels (at every row count up to 16, on any layer) on this
     * many blocks, so that a small layer has blocks covering whole strips, several strips and
     * stages of fewer chunks; 0: the default choice, one block per SM.
     */
    static volatile int ringBlocksOverride;

    /** Whether calls may take the many-rows path (tests turn it off to reach the mma tiles). */
    private boolean dequantGemmAllowed = true;

    private boolean wgmmaAllowed = true;

    /** Lets calls take the wgmma kernels where the device has them, or keeps them off. */
    void allowWgmma(boolean allowed) {
      wgmmaAllowed = allowed;
    }

    /** Whether calls of {@code rows} rows take the wgmma kernels. */
    boolean wgmmaTakes(int rows) {
      return wgmmaModule != null && wgmmaAllowed && wgmmaChosen(rows);
    }

    /** The wgmma launch plan for {@code rows} rows on this device. */
    CudaGemmPlan wgmmaPlan(int rows) {
      int tileRows = Integer.getInteger(WGMMA_ROWS_PROPERTY, CudaGemmPlan.wgmmaTileRows(rows));
      int blocks = wgmmaBlocksOverride;
      return CudaGemmPlan.w4a16Wgmma(
          rows,
          tileRows,
          layout.nPadded(),
          layout.kPadded(),
          zeros != null,
          Boolean.getBoolean(WGMMA_HYBRID_PROPERTY),
          blocks > 0 ? blocks : device.smCount(),
          (tile, threads, shared) ->
              blocks > 0 ? 1 : blocksPerSm(wgmmaModule, kernelName(tile), threads, shared));
    }

    /** Lets calls take the dequantize-then-cuBLAS path, or keeps every call on the mma kernels. */
    synchronized void allowDequantGemm(boolean allowed) {
      dequantGemmAllowed = allowed;
    }

    Prepared(
        CudaDevice device, LinearLayerConfig config, CudaW4A16Layout layout, CudaStream stream) {
      super(device, config, stream);
      this.layout = layout;
      this.bf16 = config.actType() == DType.BF16;
      this.groupShift = groupShift(layout);
      try {
        this.weights = upload(layout.words());
        this.scales = upload(layout.scales());
        this.zeros = upload(layout.zeros());
        boolean byStrip =
            device.hasWgmma()
                || ringUnavailable(
                        device.computeCapability(), device.maxSharedMemoryPerBlockOptin())
                    == null;
        this.scalesByStrip = byStrip ? upload(layout.byStrip(layout.scales())) : null;
        this.zerosByStrip =
            byStrip && layout.zeros() != null ? upload(layout.byStrip(layout.zeros())) : null;
        this.permutation = upload(layout.permutation());
      } catch (RuntimeException e) {
        close();
        throw e;
      }
      this.module = CudaPrograms.module(device, CudaSources.W4A16);
      this.wgmmaModule =
          device.hasWgmma() ? CudaPrograms.module(device, CudaSources.W4A16_WGMMA) : null;
    }

    /**
     * The small-M kernel's group index is {@code k >> groupShift}: log2 of G for the power-of-two
     * group sizes, 31 when one group spans all of K (every k, padding included, maps to group 0;
     * padding weights are zero, so their scale does not matter).
     */
    static int groupShift(CudaW4A16Layout layout) {
      int g = layout.groupSize();
      if (g >= layout.k()) {
        return 31;
      }
      if (Integer.bitCount(g) != 1) {
        throw new IllegalStateException(
            "CudaW4A16Kernel: group size "
                + g
                + " of a "
                + layout.k()
                + "x"
                + layout.n()
                + " layer, expected a power of two or K");
      }
      return Integer.numberOfTrailingZeros(g);
    }

    @Override
    public String kernel() {
      return "CudaW4A16Kernel";
    }

    /**
     * The ring plans of this layer, by B tiles (8 and 16 rows): they depend on the row count only
     * through the tile, and working out how many blocks share a strip walks every strip, so each is
     * made once (not under {@link #ringBlocksOverride}).
     */
    private final CudaGemmPlan[] ringPlans = new CudaGemmPlan[2];

    /**
     * Tests set this to run the wgmma kernels on this many blocks, so that a small layer has blocks
     * that cover whole tiles as well as blocks that share one.
     */
    static volatile int wgmmaBlocksOverride;

    /** The launch plan for {@code rows} rows on this device. */
    CudaGemmPlan plan(int rows) {
      if (ringPlan(rows)) {
        int blocks = ringBlocksOverride;
        int tiles = CudaGemmPlan.smallTiles(rows);
        CudaGemmPlan p = blocks > 0 ? null : ringPlans[tiles - 1];
        if (p == null) {
          p =
              CudaGemmPlan.w4a16Ring(
                  rows,
                  layout.nPadded(),
                  layout.kPadded(),
                  zeros != null,
                  blocks > 0 ? blocks : device.smCount(),
                  (tile, threads, shared) ->
                      blocksPerSm(module, kernelName(tile), threads, shared));
          if (blocks == 0) {
            ringPlans[tiles - 1] = p;
          }
        }
        return p;
      }
      return CudaGemmPlan.w4a16(
          rows,
          layout.nPadded(),
          layout.kPadded(),
          zeros != null,
          device.smCount(),
          device.maxSharedMemoryPerBlockOptin(),
          (tile, threads, shared) -> blocksPerSm(module, kernelName(tile), threads, shared));
    }

    private String kernelName(String tile) {
      return "q4_w4a16_" + tile + kernelSuffix();
    }

    private String kernelSuffix() {
      return (bf16 ? "_bf16" : "_f16") + (zeros != null ? "_zp" : "_sym");
    }

    @Override
    protected void run(long x, int rows, long bias, long y) {
      int k = config.k();
      int n = config.n();
      long count = (long) rows * k;
      x = gatherActOrder(module, permutation, x, rows);
      boolean chunkMajor = chunkMajorInput(rows);
      DeviceBuffer act = scratch("a16", 2L * (chunkMajor ? (long) rows * layout.kPadded() : count));
      DeviceBuffer out = scratch("c16", 2L * rows * n);
      try (Arena a = launchArena()) {
        if (chunkMajor) {
          // The ring and wgmma kernels read the rows chunk-major (one copy per stage).
          long pieces = (long) rows * layout.kPadded() / 8;
          elementwise(
              module,
              "q4_f32_to_half_chunks",
              pieces,
              KernelArgs.of(a)
                  .ptr(x)
                  .ptr(act)
                  .i32(rows)
                  .i32(k)
                  .i32(layout.kPadded())
                  .i32(bf16 ? 1 : 0));
        } else {
          elementwise(
              module,
              "q4_f32_to_half",
              count,
              KernelArgs.of(a).ptr(x).ptr(act).i64(count).i32(bf16 ? 1 : 0));
        }
      }
      gemm(act.address(), rows, bias, out.address());
      long outCount = (long) rows * n;
      try (Arena a = launchArena()) {
        elementwise(
            module,
            "q4_half_to_f32",
            outCount,
            KernelArgs.of(a).ptr(out).ptr(y).i64(outCount).i32(bf16 ? 1 : 0).i32(0));
      }
    }

    @Override
    void gemm(long input, int rows, long bias, long out16) {
      int k = config.k();
      int n = config.n();
      if (wgmmaTakes(rows)) {
        wgmmaGemm(input, rows, bias, out16);
        return;
      }
      if (dequantGemmAllowed && CudaDequantGemm.takes(rows)) {
        // The many-rows path (dequantize, then cuBLAS) with its cuBLAS handle: one per lane.
        laneResource(CudaDequantGemm.class, () -> new CudaDequantGemm(device))
            .run(
                function(module, "q4_w4a16_dequant" + kernelSuffix(), 0),
                stream(),
                layout,
                weights.address(),
                scales.address(),
                zeros == null ? 0 : zeros.address(),
                bytes -> scratch("w16", bytes),
                input,
                rows,
                out16,
                bf16);
        if (bias != 0) {
          long count = (long) rows * n;
          try (Arena a = launchArena()) {
            elementwise(
                module,
                "q4_add_bias_half",
                count,
                KernelArgs.of(a).ptr(out16).ptr(bias).i32(rows).i32(n).i32(bf16 ? 1 : 0));
          }
        }
        return;
      }
      CudaGemmPlan plan = plan(rows);
      boolean shares = plan.sharesTiles();
      DeviceBuffer partial = shares ? scratch("partial", plan.partialBytes(rows, n)) : null;
      DeviceBuffer counters = shares ? counters(plan.counters()) : null;
      CudaFunction gemm = function(module, kernelName(plan.tile()), plan.sharedBytes());
      try (Arena a = launchArena()) {
        KernelArgs args = KernelArgs.of(a).ptr(input).ptr(weights);
        if (plan.ring()) {
          args.ptr(scalesByStrip).ptr(zerosByStrip == null ? 0 : zerosByStrip.address());
        } else {
          args.ptr(scales).ptr(zeros == null ? 0 : zeros.address());
        }
        args.ptr(bias)
            .ptr(out16)
            .ptr(partial == null ? 0 : partial.address())
            .ptr(counters == null ? 0 : counters.address())
            .i32(rows)
            .i32(n)
            .i32(layout.nPadded());
        if (plan.ring()) {
          args.i32(layout.kPadded()).i32(groupShift).i32(layout.scaleRows()).i32(plan.splits());
        } else {
          args.i32(k)
              .i32(layout.kPadded())
              .i32(plan.tile().startsWith("small") ? groupShift : layout.groupSize())
              .i32(plan.kTilesPerSplit());
        }
        gemm.launch(
            new Dim3(plan.gridX(), plan.gridY(), plan.ring() ? 1 : plan.splits()),
            Dim3.of(plan.threads()),
            plan.sharedBytes(),
            stream(),
            args);
      }
    }

    /**
     * The wgmma kernels' GEMM: a launch of one tile per block for the plan's {@code wholeTiles},
     * then a stream-K launch for the other tiles, when there are any.
     */
    private void wgmmaGemm(long input, int rows, long bias, long out16) {
      CudaGemmPlan plan = wgmmaPlan(rows);
      boolean shares = plan.sharesTiles();
      DeviceBuffer partial =
          shares ? scratch("partial", plan.partialBytes(rows, config.n())) : null;
      DeviceBuffer counters = shares ? counters(plan.counters()) : null;
      CudaFunction gemm = function(wgmmaModule, kernelName(plan.tile()), plan.sharedBytes());
      int tiles = plan.counters() / 2;
      int whole = plan.wholeTiles();
      for (int first = 0; first < tiles; ) {
        boolean onePerBlock = first == 0 && whole > 0;
        int count = onePerBlock ? whole : tiles - first;
        int blocks = onePerBlock ? whole : plan.gridX();
        try (Arena a = launchArena()) {
          KernelArgs args =
              KernelArgs.of(a)
                  .ptr(input)
                  .ptr(weights)
                  .ptr(scalesByStrip)
                  .ptr(zerosByStrip == null ? 0 : zerosByStrip.address())
                  .ptr(bias)
                  .ptr(out16)
                  .ptr(partial == null ? 0 : partial.address())
                  .ptr(counters == null ? 0 : counters.address())
                  .i32(rows)
                  .i32(config.n())
                  .i32(layout.nPadded())
                  .i32(layout.kPadded())
                  .i32(groupShift)
                  .i32(layout.scaleRows())
                  .i32(first)
                  .i32(count);
          gemm.launch(
              new Dim3(blocks, 1, 1), Dim3.of(plan.threads()), plan.sharedBytes(), stream(), args);
        }
        first += count;
      }
    }

    /**
     * Whether calls of {@code rows} rows take a ring or wgmma kernel, which read their rows
     * chunk-major ({@code q4_f32_to_half_chunks}).
     */
    private boolean chunkMajorInput(int rows) {
      return wgmmaTakes(rows)
          || ringPlan(rows) && !(dequantGemmAllowed && CudaDequantGemm.takes(rows));
    }

    /** Whether {@link #plan} gives calls of {@code rows} rows a ring kernel. */
    private boolean ringPlan(int rows) {
      if (rows > CudaGemmPlan.RING_MAX_ROWS
          || ringUnavailable(device.computeCapability(), device.maxSharedMemoryPerBlockOptin())
              != null) {
        return false;
      }
      return ringBlocksOverride > 0
          || ringChosen(rows, layout.nPadded(), layout.kPadded(), device.smCount());
    }

    @Override
    long gemmInputElements(int rows) {
      return chunkMajorInput(rows) ? (long) rows * layout.kPadded() : (long) rows * config.k();
    }

    @Override
    int gemmInputBytes() {
      return 2;
    }
  }
}
