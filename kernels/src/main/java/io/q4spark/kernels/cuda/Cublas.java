package io.q4spark.kernels.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;

/**
 * The one binding class for cuBLAS ({@code libcublas.so.13}, or 12), used only as the benchmark
 * peer of the int4 kernels (a dense fp16/bf16 GEMM through {@code cublasGemmEx}): every downcall
 * handle, the enum values it needs, and typed wrappers that turn a {@code cublasStatus_t} other
 * than {@code CUBLAS_STATUS_SUCCESS} into a {@link CudaException} naming the call, the status name
 * and the key arguments.
 *
 * <p>Constants are pinned to the values of {@code library_types.h} and {@code cublas_api.h} (CUDA
 * 12 and 13 agree); {@code CublasTest} checks them.
 */
public final class Cublas {
  /** {@code CUDA_R_32F} ({@code cudaDataType}): float. */
  public static final int CUDA_R_32F = 0;

  /** {@code CUDA_R_16F}: IEEE half. */
  public static final int CUDA_R_16F = 2;

  /** {@code CUDA_R_16BF}: bfloat16. */
  public static final int CUDA_R_16BF = 14;

  /** {@code CUBLAS_COMPUTE_32F} ({@code cublasComputeType_t}): float accumulation. */
  public static final int CUBLAS_COMPUTE_32F = 68;

  /** {@code CUBLAS_GEMM_DEFAULT} ({@code cublasGemmAlgo_t}): cuBLAS's heuristic. */
  public static final int CUBLAS_GEMM_DEFAULT = -1;

  /** {@code CUBLAS_OP_N}: the matrix as stored (column-major). */
  public static final int CUBLAS_OP_N = 0;

  /** {@code CUBLAS_OP_T}: its transpose. */
  public static final int CUBLAS_OP_T = 1;

  /** {@code CUBLAS_DEFAULT_MATH} ({@code cublasMath_t}): tensor cores where the types allow. */
  public static final int CUBLAS_DEFAULT_MATH = 0;

  /** {@code CUBLAS_PEDANTIC_MATH}: no reduced-precision shortcuts. */
  public static final int CUBLAS_PEDANTIC_MATH = 2;

  /**
   * {@code CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION}, or-ed into a math mode: split-K
   * partial sums stay fp32 even when {@code C} is 16-bit (the references accumulate in fp32 and
   * round once).
   */
  public static final int CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION = 16;

  /** {@code CUBLAS_STATUS_SUCCESS}. */
  public static final int CUBLAS_STATUS_SUCCESS = 0;

  private static final String REQUIREMENT =
      "q4spark needs cuBLAS 12 or newer (point Q4SPARK_CUBLAS_LIB at libcublas.so.13)";

  private final String location;
  private final MethodHandle cublasCreate;
  private final MethodHandle cublasDestroy;
  private final MethodHandle cublasSetStream;
  private final MethodHandle cublasSetMathMode;
  private final MethodHandle cublasGemmEx;

  /** Binds every function of the cuBLAS loaded as {@code lookup} from {@code location}. */
  Cublas(SymbolLookup lookup, String location) {
    this.location = location;
    NativeBinder b = new NativeBinder(lookup, location, REQUIREMENT);
    cublasCreate = b.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS), "cublasCreate_v2");
    cublasDestroy = b.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS), "cublasDestroy_v2");
    cublasSetStream =
        b.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "cublasSetStream_v2");
    cublasSetMathMode =
        b.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT), "cublasSetMathMode");
    cublasGemmEx =
        b.bind(
            FunctionDescriptor.of(
                JAVA_INT, // cublasStatus_t
                ADDRESS, // cublasHandle_t handle
                JAVA_INT, // cublasOperation_t transa
                JAVA_INT, // cublasOperation_t transb
                JAVA_INT, // int m
                JAVA_INT, // int n
                JAVA_INT, // int k
                ADDRESS, // const void *alpha
                ADDRESS, // const void *A
                JAVA_INT, // cudaDataType Atype
                JAVA_INT, // int lda
                ADDRESS, // const void *B
                JAVA_INT, // cudaDataType Btype
                JAVA_INT, // int ldb
                ADDRESS, // const void *beta
                ADDRESS, // void *C
                JAVA_INT, // cudaDataType Ctype
                JAVA_INT, // int ldc
                JAVA_INT, // cublasComputeType_t computeType
                JAVA_INT), // cublasGemmAlgo_t algo
            "cublasGemmEx");
  }

  /**
   * Loads cuBLAS by {@link CudaLibraries}' search order; a {@link CudaException} with every path
   * tried when it is not there.
   */
  public static Cublas load(CudaOptions options) {
    CudaLibraries.Result result = CudaLibraries.find(CudaLibraries.Library.CUBLAS, options);
    return switch (result) {
      case CudaLibraries.Found f -> new Cublas(f.lookup(), f.location());
      case CudaLibraries.NotFound n -> throw new CudaException(n.reason());
    };
  }

  /** Where cuBLAS was loaded from. */
  public String location() {
    return location;
  }

  /** The name of a {@code cublasStatus_t}, e.g. {@code CUBLAS_STATUS_NOT_SUPPORTED}. */
  public static String statusName(int status) {
    return switch (status) {
      case 0 -> "CUBLAS_STATUS_SUCCESS";
      case 1 -> "CUBLAS_STATUS_NOT_INITIALIZED";
      case 3 -> "CUBLAS_STATUS_ALLOC_FAILED";
      case 7 -> "CUBLAS_STATUS_INVALID_VALUE";
      case 8 -> "CUBLAS_STATUS_ARCH_MISMATCH";
      case 11 -> "CUBLAS_STATUS_MAPPING_ERROR";
      case 13 -> "CUBLAS_STATUS_EXECUTION_FAILED";
      case 14 -> "CUBLAS_STATUS_INTERNAL_ERROR";
      case 15 -> "CUBLAS_STATUS_NOT_SUPPORTED";
      case 16 -> "CUBLAS_STATUS_LICENSE_ERROR";
      default -> "cublasStatus_t " + status;
    };
  }

  private static void check(int status, String call) {
    if (status != CUBLAS_STATUS_SUCCESS) {
      String name = statusName(status);
      throw new CudaException(call + " failed: " + name + " (" + status + ")", status, name, null);
    }
  }

  /**
   * {@code cublasCreate_v2}: a handle bound to the context current on the calling thread ({@link
   * CudaDevice#makeCurrent()} first).
   */
  public MemorySegment create() {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment out = arena.allocate(ADDRESS);
      int s;
      try {
        s = (int) cublasCreate.invokeExact(out);
      } catch (Throwable t) {
        throw NativeBinder.propagate("cublasCreate_v2", t);
      }
      check(s, "cublasCreate_v2()");
      return out.get(ADDRESS, 0);
    }
  }

  /** {@code cublasDestroy_v2}. */
  public void destroy(MemorySegment handle) {
    int s;
    try {
      s = (int) cublasDestroy.invokeExact(handle);
    } catch (Throwable t) {
      throw NativeBinder.propagate("cublasDestroy_v2", t);
    }
    check(s, "cublasDestroy_v2(" + CudaDriver.hex(handle) + ")");
  }

  /** {@code cublasSetStream_v2}: later calls on {@code handle} run on {@code stream}. */
  public void setStream(MemorySegment handle, CudaStream stream) {
    int s;
    try {
      s = (int) cublasSetStream.invokeExact(handle, stream.handle());
    } catch (Throwable t) {
      throw NativeBinder.propagate("cublasSetStream_v2", t);
    }
    check(s, "cublasSetStream_v2(stream=" + CudaDriver.hex(stream.handle()) + ")");
  }

  /** {@code cublasSetMathMode} ({@code CUBLAS_*_MATH}). */
  public void setMathMode(MemorySegment handle, int mode) {
    int s;
    try {
      s = (int) cublasSetMathMode.invokeExact(handle, mode);
    } catch (Throwable t) {
      throw NativeBinder.propagate("cublasSetMathMode", t);
    }
    check(s, "cublasSetMathMode(mode=" + mode + ")");
  }

  /**
   * {@code cublasGemmEx} with float {@code alpha} and {@code beta} in host memory (the default
   * pointer mode), so {@code computeType} must be a 32F one: {@code C = alpha * op(A) op(B) + beta
   * * C}, column-major, {@code C} being {@code m x n} and the inner dimension {@code k}.
   */
  public void gemmEx(
      MemorySegment handle,
      int transa,
      int transb,
      int m,
      int n,
      int k,
      float alpha,
      long a,
      int aType,
      int lda,
      long b,
      int bType,
      int ldb,
      float beta,
      long c,
      int cType,
      int ldc,
      int computeType,
      int algo) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment alphaSeg = arena.allocateFrom(JAVA_FLOAT, alpha);
      MemorySegment betaSeg = arena.allocateFrom(JAVA_FLOAT, beta);
      int s;
      try {
        s =
            (int)
                cublasGemmEx.invokeExact(
                    handle,
                    transa,
                    transb,
                    m,
                    n,
                    k,
                    alphaSeg,
                    MemorySegment.ofAddress(a),
                    aType,
                    lda,
                    MemorySegment.ofAddress(b),
                    bType,
                    ldb,
                    betaSeg,
                    MemorySegment.ofAddress(c),
                    cType,
                    ldc,
                    computeType,
                    algo);
      } catch (Throwable t) {
        throw NativeBinder.propagate("cublasGemmEx", t);
      }
      if (s != CUBLAS_STATUS_SUCCESS) {
        check(
            s,
            "cublasGemmEx(transa="
                + transa
                + ", transb="
                + transb
                + ", m="
                + m
                + ", n="
                + n
                + ", k="
                + k
                + ", types A/B/C="
                + aType
                + "/"
                + bType
                + "/"
                + cType
                + ", lda/ldb/ldc="
                + lda
                + "/"
                + ldb
                + "/"
                + ldc
                + ", computeType="
                + computeType
                + ", algo="
                + algo
                + ")");
      }
    }
  }
}
