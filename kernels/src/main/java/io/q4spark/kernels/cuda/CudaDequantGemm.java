package io.q4spark.kernels.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.function.LongFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@link CudaW4A16Kernel}'s path for many rows: dequantize the layer's int4 weights once per call
 * into a dense 16-bit matrix in device scratch ({@code q4_dequant.cuh}), then one cuBLAS GEMM with
 * fp32 accumulation, then the bias. From a few dozen rows on, a dense Hopper GEMM is several times
 * faster than the mma.sync kernel, and writing 2 bytes per weight once per call costs about as much
 * as a dense layer reading its fp16 weights once; below that the mma kernel, which reads each int4
 * weight once and nothing else, wins. The results are the reference's: each weight rounded once to
 * the activation dtype, products summed in fp32 (reduced-precision reductions disallowed), the sum
 * rounded once, then the bias added and rounded again. (Column slabs that stay in L2, {@link
 * Schedule}, were measured and lose at every row count; the whole layer is dequantized at once.)
 *
 * <p>cuBLAS is found once per process by {@link CudaLibraries}' search order; without it the kernel
 * keeps to the mma path at every row count, and says so once in the log.
 */
final class CudaDequantGemm implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(CudaDequantGemm.class);

  /**
   * Rows from which a call takes this path: every row count the small-M kernel serves ({@link
   * CudaGemmPlan#SMALL_MAX_ROWS}) stays on the mma kernels. Measured on the H200 (bench gpu,
   * 2026-12-02, fourth session; µs of the mma kernels / this path): 4096x4096 at 32 rows 17.0 /
   * 25.0, at 64 23.0 / 24.9, at 80 (tiled kernel) 75.2 / 28.0; 4096x6144 18.1 / 37.1, 28.5 / 37.4,
   * 91.7 / 37.7; 4096x14336 33.3 / 78.0, 49.8 / 78.5, 117.4 / 78.8; 14336x4096 33.8 / 77.4, 53.8 /
   * 79.0, 113.9 / 80.0. (Before the small-M kernel took 17-64 rows, the tiled kernels won up to 95
   * rows on the large layers and up to 31 on 4096x4096.) Where a block cannot have the small-M
   * kernel's shared memory for 33-64 rows, the medium tile takes them, within a few percent of this
   * path on the H200 (4096x4096 at 33-64 rows 25.6-25.9 / 24.9; 4096x14336 at 64 rows 74.9 / 78.5).
   * The JVM property {@code q4spark.cuda.dequantGemmMinRows} overrides it, for such measurements.
   */
  static final int MIN_ROWS = CudaGemmPlan.SMALL_MAX_ROWS + 1;

  private static final Integer MIN_ROWS_OVERRIDE =
      Integer.getInteger("q4spark.cuda.dequantGemmMinRows");

  /** Threads per block of the dequantization kernel: 4 warps, one k16 step each. */
  private static final int DEQUANT_THREADS = 128;

  /** Rows and columns of the tile one dequantization block writes. */
  private static final int DEQUANT_TILE = 64;

  private static volatile Object cublas;

  private final CudaDevice device;
  private MemorySegment handle;

  /** The stream the dequantizations run on when a schedule has two, and its events. */
  private CudaStream side;

  private CudaEvent started;
  private final CudaEvent[] dequantized = new CudaEvent[2];
  private final CudaEvent[] gemmDone = new CudaEvent[2];

  CudaDequantGemm(CudaDevice device) {
    this.device = device;
  }

  /** The process's cuBLAS binding, or null (logged once) when the library cannot be loaded. */
  static Cublas cublas() {
    Object c = cublas;
    if (c == null) {
      synchronized (CudaDequantGemm.class) {
        c = cublas;
        if (c == null) {
          try {
            c = Cublas.load(CudaOptions.defaults());
          } catch (RuntimeException e) {
            c = e.getMessage();
            LOG.warn(
                "q4spark: no cuBLAS ({}); CudaW4A16Kernel runs every row count on its mma kernel",
                c);
          }
          cublas = c;
        }
      }
    }
    return c instanceof Cublas b ? b : null;
  }

  /** Whether a call of {@code rows} rows takes this path (on any layer: see {@link #MIN_ROWS}). */
  static boolean takes(int rows) {
    int min = MIN_ROWS_OVERRIDE != null ? MIN_ROWS_OVERRIDE : MIN_ROWS;
    return rows >= min && cublas() != null;
  }

  /**
   * How a call is split into column slabs: each slab of the weights is dequantized into one of two
   * slabs of scratch, used in turn, then multiplied by its own GEMM into its columns of the output.
   * Small slabs stay in L2 between the two, so the 16-bit weights need not reach HBM, but at a
   * thousand rows a slab's GEMM has too few output tiles for 132 SMs and loses more than the L2
   * saves. Measured on the H200 (µs at M = 1024, slab columns / streams; cuBLAS fp16 alone 171.2 on
   * 4096x14336, 47.1 on 4096x4096): 4096x14336 whole 208.4, 1024/1 282.8, 2048/1 238.4, 4096/1
   * 229.4, 2048/2 227.2, 3072/2 217.7, 4096/2 210.4, 7168/2 208.6; 4096x4096 whole 60.6, 1024/1
   * 82.0, 2048/1 68.2, 2048/2 73.0. At 256 rows slabs lose more (4096x14336: whole 89.5, 4096/2
   * 106.1), at 2048 and 8192 they are level at best (14336x4096 at 2048 rows: 344.5 / 342.4 for
   * 2048/2). Asking cuBLAS to plan for fewer SMs ({@code cublasSetSmCountTarget} 120, leaving SMs
   * to the other stream's dequantization) lost 5-15% more. So every call takes the whole layer at
   * once ({@link #WHOLE}); the JVM property {@code q4spark.cuda.dequantSlab} ({@code
   * columns[,streams]}, e.g. {@code 2048,2}) selects slabs, for such measurements.
   *
   * @param slabColumns columns per slab, a multiple of {@link CudaW4A16Layout#STRIP} (slabs are
   *     then evened out); 0 for the whole layer in one slab
   * @param twoStreams whether slab i + 1's dequantization runs on a second stream, alongside slab
   *     i's GEMM
   */
  record Schedule(int slabColumns, boolean twoStreams) {
    Schedule {
      if (slabColumns < 0 || slabColumns % CudaW4A16Layout.STRIP != 0) {
        throw new IllegalArgumentException(
            "slab columns should be 0 or a multiple of "
                + CudaW4A16Layout.STRIP
                + ", but were "
                + slabColumns);
      }
    }

    /** {@code columns[,streams]}, as the JVM property takes it. */
    static Schedule parse(String value) {
      String[] p = value.split(",");
      try {
        return new Schedule(
            Integer.parseInt(p[0].trim()), p.length > 1 && Integer.parseInt(p[1].trim()) == 2);
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException(
            "q4spark.cuda.dequantSlab should be columns[,streams] such as 2048,2, but was " + value,
            e);
      }
    }
  }

  /** The whole layer at once, on one stream. */
  static final Schedule WHOLE = new Schedule(0, false);

  private static final Schedule PROPERTY_SCHEDULE =
      System.getProperty("q4spark.cuda.dequantSlab") == null
          ? null
          : Schedule.parse(System.getProperty("q4spark.cuda.dequantSlab"));

  /** Replaces {@link #schedule}'s choice for every call while set (tests). */
  private static volatile Schedule override;

  /** Sets (or, with null, clears) the schedule every call takes. */
  static void override(Schedule schedule) {
    override = schedule;
  }

  /** The schedule of a call of {@code rows} rows on a K x N layer. */
  static Schedule schedule(int rows, int k, int n) {
    Schedule o = override;
    if (o != null) {
      return o;
    }
    return PROPERTY_SCHEDULE != null ? PROPERTY_SCHEDULE : WHOLE;
  }

  /**
   * {@code out16[rows, n] = input[rows, k] x dequantize(weights)}, rounded once to the 16-bit type,
   * queued on {@code stream} (the caller adds the bias: {@code q4_add_bias_half}). The weights are
   * dequantized slab by slab ({@link #schedule}) into one or two slabs of scratch reused in turn,
   * each followed by its GEMM, which writes the slab's columns of {@code out16}.
   *
   * @param dequant the layout's dequantization kernel
   * @param scratch device scratch of at least the given bytes (reused across calls)
   * @param bf16 whether the 16-bit type is bf16
   */
  void run(
      CudaFunction dequant,
      CudaStream stream,
      CudaW4A16Layout layout,
      long weights,
      long scales,
      long zeros,
      LongFunction<DeviceBuffer> scratch,
      long input,
      int rows,
      long out16,
      boolean bf16) {
    int kp = layout.kPadded();
    int np = layout.nPadded();
    int n = layout.n();
    int k = layout.k();
    Schedule s = schedule(rows, k, n);
    int strips = np / CudaW4A16Layout.STRIP;
    int slabs =
        s.slabColumns() == 0
            ? 1
            : Math.ceilDiv(strips, Math.max(1, s.slabColumns() / CudaW4A16Layout.STRIP));
    int slabStrips = Math.ceilDiv(strips, slabs);
    slabs = Math.ceilDiv(strips, slabStrips);
    int ldw = slabStrips * CudaW4A16Layout.STRIP;
    long slabBytes = 2L * kp * ldw;
    DeviceBuffer w16 = scratch.apply(slabs > 1 ? 2 * slabBytes : slabBytes);
    boolean two = s.twoStreams() && slabs > 1;
    Cublas blas = cublas();
    MemorySegment h = handle(blas);
    blas.setStream(h, stream);
    CudaStream side = stream;
    if (two) {
      side = sideStream();
      // The side stream writes scratch that earlier calls' GEMMs on stream may still read.
      started.record(stream);
      side.waitFor(started);
    }
    int type = bf16 ? Cublas.CUDA_R_16BF : Cublas.CUDA_R_16F;
    for (int i = 0; i < slabs; i++) {
      int strip0 = i * slabStrips;
      int count = Math.min(slabStrips, strips - strip0);
      int col0 = strip0 * CudaW4A16Layout.STRIP;
      long slab = w16.address() + (i % 2) * slabBytes;
      if (two && i >= 2) {
        side.waitFor(gemmDone[i % 2]);
      }
      try (Arena a = CudaPreparedLinear.launchArena()) {
        dequant.launch(
            new Dim3(count, kp / DEQUANT_TILE, 1),
            Dim3.of(DEQUANT_THREADS),
            0,
            side,
            KernelArgs.of(a)
                .ptr(weights)
                .ptr(scales)
                .ptr(zeros)
                .ptr(slab)
                .i32(kp)
                .i32(np)
                .i32(layout.groupSize())
                .i32(strip0)
                .i32(ldw));
      }
      if (two) {
        dequantized[i % 2].record(side);
        stream.waitFor(dequantized[i % 2]);
      }
      // Row-major out[rows, n] = in[rows, k] W[k, n] is, column-major, out^T = W^T in^T: A = the
      // slab with lda = its width, B = in with ldb = K, C = the slab's columns of out with ldc = N.
      blas.gemmEx(
          h,
          Cublas.CUBLAS_OP_N,
          Cublas.CUBLAS_OP_N,
          Math.min(count * CudaW4A16Layout.STRIP, n - col0),
          rows,
          k,
          1f,
          slab,
          type,
          ldw,
          input,
          type,
          k,
          0f,
          out16 + 2L * col0,
          type,
          n,
          Cublas.CUBLAS_COMPUTE_32F,
          Cublas.CUBLAS_GEMM_DEFAULT);
      if (two && i + 2 < slabs) {
        gemmDone[i % 2].record(stream);
      }
    }
  }

  /** The second stream and its events, made on the first call that needs them. */
  private CudaStream sideStream() {
    if (side == null) {
      side = device.createStream();
      started = device.createOrderingEvent();
      for (int i = 0; i < 2; i++) {
        dequantized[i] = device.createOrderingEvent();
        gemmDone[i] = device.createOrderingEvent();
      }
    }
    return side;
  }

  private MemorySegment handle(Cublas blas) {
    if (handle == null) {
      device.makeCurrent();
      handle = blas.create();
      blas.setMathMode(
          handle,
          Cublas.CUBLAS_DEFAULT_MATH | Cublas.CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION);
    }
    return handle;
  }

  @Override
  public void close() {
    if (side != null) {
      side.synchronize();
      side.close();
      started.close();
      for (int i = 0; i < 2; i++) {
        dequantized[i].close();
        gemmDone[i].close();
      }
      side = null;
    }
    if (handle != null) {
      device.makeCurrent();
      cublas().destroy(handle);
      handle = null;
    }
  }
}
