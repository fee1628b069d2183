package io.q4spark.kernels.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
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
 * rounded once, then the bias added and rounded again.
 *
 * <p>cuBLAS is found once per process by {@link CudaLibraries}' search order; without it the kernel
 * keeps to the mma path at every row count, and says so once in the log.
 */
final class CudaDequantGemm implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(CudaDequantGemm.class);

  /**
   * Rows from which a call takes this path, for layers of more than {@link #SMALL_LAYER} weights.
   * Measured on the H200 (bench gpu, 2026-12-02; µs of the mma kernel / this path): 4096x14336 at
   * 32 rows 65.7 / 79.8, at 64 rows 73.0 / 80.2, at 128 rows 147.0 / 81.3; 14336x4096 62.7 / 79.6,
   * 80.3 / 80.8, 147.2 / 83.6. The JVM property {@code q4spark.cuda.dequantGemmMinRows} overrides
   * both thresholds, for such measurements.
   */
  static final int MIN_ROWS = 96;

  /**
   * The same for layers of at most {@link #SMALL_LAYER} weights, where the dequantization is short
   * (4096x4096: 31.3 / 25.9 µs at 32 rows, 40.7 / 25.8 at 64).
   */
  static final int MIN_ROWS_SMALL_LAYER = 32;

  /** 4096 x 4096 weights. */
  static final long SMALL_LAYER = 1L << 24;

  private static final Integer MIN_ROWS_OVERRIDE =
      Integer.getInteger("q4spark.cuda.dequantGemmMinRows");

  /** Threads per block of the dequantization kernel: 4 warps, one k16 step each. */
  private static final int DEQUANT_THREADS = 128;

  /** Rows and columns of the tile one dequantization block writes. */
  private static final int DEQUANT_TILE = 64;

  private static volatile Object cublas;

  private final CudaDevice device;
  private MemorySegment handle;

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

  /** Whether a call of {@code rows} rows on a K x N layer takes this path. */
  static boolean takes(int rows, int k, int n) {
    int min =
        MIN_ROWS_OVERRIDE != null
            ? MIN_ROWS_OVERRIDE
            : (long) k * n <= SMALL_LAYER ? MIN_ROWS_SMALL_LAYER : MIN_ROWS;
    return rows >= min && cublas() != null;
  }

  /**
   * {@code out16[rows, n] = input[rows, k] x dequantize(weights)}, rounded once to the 16-bit type,
   * queued on {@code stream} (the caller adds the bias: {@code q4_add_bias_half}).
   *
   * @param dequant the layout's dequantization kernel
   * @param w16 scratch of at least {@code 2 * kPadded * nPadded} bytes
   * @param bf16 whether the 16-bit type is bf16
   */
  void run(
      CudaFunction dequant,
      CudaStream stream,
      CudaW4A16Layout layout,
      long weights,
      long scales,
      long zeros,
      DeviceBuffer w16,
      long input,
      int rows,
      long out16,
      boolean bf16) {
    int kp = layout.kPadded();
    int np = layout.nPadded();
    try (Arena a = CudaPreparedLinear.launchArena()) {
      dequant.launch(
          new Dim3(np / DEQUANT_TILE, kp / DEQUANT_TILE, 1),
          Dim3.of(DEQUANT_THREADS),
          0,
          stream,
          KernelArgs.of(a)
              .ptr(weights)
              .ptr(scales)
              .ptr(zeros)
              .ptr(w16)
              .i32(kp)
              .i32(np)
              .i32(layout.groupSize()));
    }
    Cublas blas = cublas();
    MemorySegment h = handle(blas);
    blas.setStream(h, stream);
    int type = bf16 ? Cublas.CUDA_R_16BF : Cublas.CUDA_R_16F;
    int n = layout.n();
    int k = layout.k();
    // Row-major out[rows, n] = in[rows, k] W[k, n] is, column-major, out^T = W^T in^T: A = W with
    // lda = Np, B = in with ldb = K, C = out with ldc = N.
    blas.gemmEx(
        h,
        Cublas.CUBLAS_OP_N,
        Cublas.CUBLAS_OP_N,
        n,
        rows,
        k,
        1f,
        w16.address(),
        type,
        np,
        input,
        type,
        k,
        0f,
        out16,
        type,
        n,
        Cublas.CUBLAS_COMPUTE_32F,
        Cublas.CUBLAS_GEMM_DEFAULT);
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
    if (handle != null) {
      device.makeCurrent();
      cublas().destroy(handle);
      handle = null;
    }
  }
}
