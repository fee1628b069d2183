package io.q4spark.kernels;

import java.util.List;

/**
 * Every kernel q4spark has, in selection priority order, loaded by class name only when selection
 * reaches it: a backend whose library or JVM module is missing disables itself and says why,
 * without touching the others (the pattern of Lucene's {@code VectorizationProvider.lookup}).
 *
 * <p>Order: faster kernels first. The CUDA kernels come first in each family: they accept a layer
 * only where a CUDA device of compute capability 8.0 or newer and NVRTC are present (their probe
 * says what is missing otherwise), and an H100 runs a layer in microseconds where the CPU kernels
 * take milliseconds. The Vector API kernel streams packed weights once per call for small M and
 * runs a register-blocked GEMM on dequantized panels for large M. The tiled Java kernel reuses each
 * dequantized weight tile across a block of rows, so it is preferred to the reference, which
 * dequantizes every weight for every row. The oneDNN kernels (JavaCPP natives from Maven, loaded
 * when selection reaches them) come after the Java kernels, as measured by {@code bench cpu} (K = N
 * = 4096, G = 128, fp32, hot, median ms at M = 1 / 16 / 256, 2 threads). On the 2-core AVX-512
 * EPYC: oneDNN 3.13's f32 x u4 matmul 1.47 / 3.77 / 41.2 against the Vector API kernel's 0.34 /
 * 4.33 / 48.3 (ONNX Runtime MatMulNBits accuracy level 0: 0.55 / 4.25 / 51.9); on the 2-core AVX2
 * machine ({@code brg_matmul:avx2}) 3.19 / 6.54 / 61.5 against 0.56 / 4.40 / 50.0; on the GPU
 * host's 16-core Sapphire Rapids ({@code brg_matmul:avx512_core}) 1.01 / - / 10.3 against 0.27 / -
 * / 16.4. oneDNN takes 13 % less time at M = 16 and 256 on the EPYC and 37 % less at M = 256 on
 * Sapphire Rapids, the Vector API kernel 4 to 6 times less at M = 1. So the Vector API kernel is
 * chosen, and where oneDNN runs an AVX-512 / AMX brgemm kernel it takes the calls of {@code
 * OneDnnW4A16Kernel.FASTER_FROM_ROWS} (8) rows and more ({@link Entry#manyRowsAfter}; the crossover
 * measured on the EPYC is in that constant's Javadoc); on AVX2 it never does.
 *
 * <p>W4A8 in the same way: the Vector API kernel (integer 16-bit-lane GEMM up to 32 rows, fp32
 * above) is chosen, and oneDNN's s8 x s4 matmul, which accepts a layer only where it has a fast
 * path, takes calls of {@code OneDnnW4A8Kernel.FASTER_FROM_ROWS} (32) rows and more ({@code
 * FASTER_FROM_ROWS_AMX}, 4, where its kernel runs on AMX: crossovers in those Javadocs): on the
 * EPYC (AVX-512 VNNI) oneDNN 1.94 / 3.15 / 18.0 ms at M = 1 / 16 / 256 against the Vector API
 * kernel's 0.21 / 3.11 / 48 (ONNX Runtime accuracy level 4: 0.12 / 1.48 / 22.8); on Sapphire Rapids
 * ({@code brg_matmul:avx10_1_512_amx}) 5.7 against 15.5 ms at M = 256 (0.50 against 0.26 at M = 1).
 * On AVX2 it reports {@code ref_int8:any} and rejects itself. The scalar references come last: they
 * accept the widest range of layers and are the specification.
 */
public final class KernelCatalog {
  private KernelCatalog() {}

  /**
   * A kernel by name and class, with the JVM module it needs (null for none): a kernel whose module
   * is missing is reported unavailable before its class is touched.
   *
   * @param manyRowsAfter the kernel ahead of this one from which it may take calls of many rows
   *     ({@link LinearKernel#fasterFromRows}), or null
   */
  public record Entry(String name, String className, String requiredModule, String manyRowsAfter) {
    Entry(String name, String className) {
      this(name, className, null, null);
    }

    Entry(String name, String className, String requiredModule) {
      this(name, className, requiredModule, null);
    }
  }

  /**
   * The Vector API, incubating in Java 25: the JVM needs {@code --add-modules
   * jdk.incubator.vector}.
   */
  static final String VECTOR_MODULE = "jdk.incubator.vector";

  public static final List<Entry> PRIORITY =
      List.of(
          new Entry("CudaW4A16Kernel", "io.q4spark.kernels.cuda.CudaW4A16Kernel"),
          new Entry("SimdW4A16Kernel", "io.q4spark.kernels.simd.SimdW4A16Kernel", VECTOR_MODULE),
          new Entry("TiledW4A16Kernel", "io.q4spark.kernels.tiled.TiledW4A16Kernel"),
          new Entry(
              "OneDnnW4A16Kernel",
              "io.q4spark.kernels.onednn.OneDnnW4A16Kernel",
              null,
              "SimdW4A16Kernel"),
          new Entry("ScalarW4A16Kernel", "io.q4spark.kernels.scalar.ScalarW4A16Kernel"),
          new Entry("CudaW4A8Kernel", "io.q4spark.kernels.cuda.CudaW4A8Kernel"),
          new Entry("SimdW4A8Kernel", "io.q4spark.kernels.simd.SimdW4A8Kernel", VECTOR_MODULE),
          new Entry(
              "OneDnnW4A8Kernel",
              "io.q4spark.kernels.onednn.OneDnnW4A8Kernel",
              null,
              "SimdW4A8Kernel"),
          new Entry("ScalarW4A8Kernel", "io.q4spark.kernels.scalar.ScalarW4A8Kernel"));

  /** The names, in priority order. */
  public static List<String> names() {
    return PRIORITY.stream().map(Entry::name).toList();
  }

  /**
   * Loads and constructs the kernel, or throws {@link KernelUnavailableException} with the reason
   * (a missing class, module or native library).
   */
  public static LinearKernel load(Entry entry) {
    if (entry.requiredModule() != null
        && ModuleLayer.boot().findModule(entry.requiredModule()).isEmpty()) {
      throw new KernelUnavailableException(
          entry.name()
              + " needs the JVM module "
              + entry.requiredModule()
              + ": start Java with --add-modules "
              + entry.requiredModule(),
          null);
    }
    try {
      Class<?> type = Class.forName(entry.className());
      return (LinearKernel) type.getDeclaredConstructor().newInstance();
    } catch (ReflectiveOperationException | LinkageError | ClassCastException e) {
      Throwable cause = e.getCause() != null ? e.getCause() : e;
      throw new KernelUnavailableException(entry.name() + " could not be loaded: " + cause, cause);
    }
  }

  /** The kernel named {@code name}, loaded; an unknown name lists the known ones. */
  public static LinearKernel load(String name) {
    return load(entry(name));
  }

  static Entry entry(String name) {
    for (Entry e : PRIORITY) {
      if (e.name().equals(name)) {
        return e;
      }
    }
    throw new IllegalArgumentException("unknown kernel '" + name + "': expected one of " + names());
  }

  /** A kernel cannot run on this machine (its library, module or device is missing). */
  public static final class KernelUnavailableException extends RuntimeException {
    public KernelUnavailableException(String message, Throwable cause) {
      super(message, cause);
    }
  }
}
