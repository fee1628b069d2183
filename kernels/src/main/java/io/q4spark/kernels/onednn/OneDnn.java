package io.q4spark.kernels.onednn;

import org.bytedeco.dnnl.dnnl_version_t;
import org.bytedeco.dnnl.engine;
import org.bytedeco.dnnl.global.dnnl;
import org.bytedeco.dnnl.matmul;
import org.bytedeco.dnnl.memory;
import org.bytedeco.dnnl.primitive_attr;
import org.bytedeco.javacpp.Loader;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one binding class for oneDNN, reached through JavaCPP's {@code org.bytedeco:dnnl} preset:
 * loading the natives, the CPU engine, and the calls whose C++ exceptions are turned into {@link
 * OneDnnException}s that name the call and its arguments. Every other class of this package goes
 * through it, so loading happens in one place: the first use of this class loads the natives, and a
 * failure is kept and thrown by {@link #load()} as an {@link UnsatisfiedLinkError} (a {@link
 * LinkageError}) from each kernel's constructor, which {@code KernelCatalog.load} turns into the
 * kernel's unavailability reason.
 *
 * <p>Where the natives come from, in JavaCPP's order: the directory named by the system property
 * {@code org.bytedeco.javacpp.cachedir} (default {@code ~/.javacpp/cache}) holding libraries
 * already extracted from the platform jars on the class path ({@code
 * dnnl-3.13-1.5.14-linux-x86_64.jar}, {@code opencl-3.0-1.5.13-linux-x86_64.jar}, {@code
 * javacpp-1.5.14-linux-x86_64.jar}, all from Maven), then those jars themselves (extracted on first
 * use), then {@code java.library.path} and the system loader. Nothing is downloaded at run time.
 * The dnnl preset inherits the OpenCL preset, so {@code jniOpenCL} is loaded too, although the CPU
 * engine never calls it.
 *
 * <p>JavaCPP's own messages go to SLF4J (logger {@code org.bytedeco.javacpp.Loader}) unless the
 * system property {@code org.bytedeco.javacpp.logger} says otherwise: the one message it prints
 * here is the known version mismatch of the opencl preset, a warning rather than a line on stderr.
 * Before loading, {@link OpenMp#waitPassivelyUnlessSet()} makes OpenMP's idle workers sleep instead
 * of spinning.
 */
final class OneDnn {
  private static final Logger LOG = LoggerFactory.getLogger(OneDnn.class);
  private static final String LOGGER_PROPERTY = "org.bytedeco.javacpp.logger";

  /** The CPU engine, index 0: oneDNN has one CPU engine per process; null when not loaded. */
  private static final engine CPU;

  private static final String VERSION;

  /** Why the natives could not be loaded, or null. */
  private static final String LOAD_FAILURE;

  static {
    engine cpu = null;
    String version = null;
    String failure = null;
    try {
      if (System.getProperty(LOGGER_PROPERTY) == null) {
        System.setProperty(LOGGER_PROPERTY, "slf4j");
      }
      String passive = OpenMp.waitPassivelyUnlessSet();
      if (passive != null) {
        LOG.warn("OpenMP's workers will spin after each oneDNN call: {}", passive);
      }
      Loader.load(dnnl.class);
      cpu = new engine(engine.kind.cpu, 0);
      dnnl_version_t v = dnnl.version();
      version = v.major() + "." + v.minor() + "." + v.patch();
    } catch (LinkageError | RuntimeException e) {
      failure =
          "oneDNN's natives could not be loaded ("
              + e
              + "): the class path needs org.bytedeco:dnnl:3.13-1.5.14, javacpp:1.5.14 and"
              + " opencl:3.0-1.5.13, each with its platform jar (classifier linux-x86_64; other"
              + " platforms are not shipped)";
    }
    CPU = cpu;
    VERSION = version;
    LOAD_FAILURE = failure;
  }

  private OneDnn() {}

  /**
   * Throws an {@link UnsatisfiedLinkError} naming the missing jars when the natives could not be
   * loaded; every kernel constructor calls it, so {@code KernelCatalog.load} reports the reason.
   */
  static void load() {
    if (LOAD_FAILURE != null) {
      throw new UnsatisfiedLinkError(LOAD_FAILURE);
    }
  }

  static engine cpu() {
    return CPU;
  }

  /** oneDNN's version, e.g. {@code 3.13.0}. */
  static String version() {
    return VERSION;
  }

  /**
   * The instruction set oneDNN dispatches to on this CPU, e.g. {@code avx2} or {@code
   * avx512_core_amx}.
   */
  static String effectiveIsa() {
    return dnnl.get_effective_cpu_isa().toString();
  }

  /** A plain row-major 2-D memory descriptor. */
  static memory.desc rowMajor(long rows, long cols, memory.data_type type) {
    try {
      return new memory.desc(new long[] {rows, cols}, type, memory.format_tag.ab);
    } catch (RuntimeException e) {
      throw new OneDnnException(
          "memory::desc(" + type + " [" + rows + ", " + cols + "], ab)", e.getMessage(), e);
    }
  }

  /**
   * {@code matmul::primitive_desc(engine, src, weights, dst, attr)}, with {@code what} (the shapes
   * and types, for the message) when oneDNN refuses it.
   */
  static matmul.primitive_desc matmul(
      memory.desc src, memory.desc weights, memory.desc dst, primitive_attr attr, String what) {
    try {
      return new matmul.primitive_desc(CPU, src, weights, dst, attr, false);
    } catch (RuntimeException e) {
      throw new OneDnnException("matmul::primitive_desc for " + what, e.getMessage(), e);
    }
  }

  /** The implementation oneDNN picked for {@code pd}, e.g. {@code brg_matmul:avx2}. */
  static String implementation(matmul.primitive_desc pd) {
    return pd.impl_info_str().getString();
  }

  /** Whether {@code implementation} names one of oneDNN's reference (unoptimized) kernels. */
  /**
   * Whether {@code implementation} is one of oneDNN's AVX-512 (or newer: AVX10, AMX) brgemm
   * kernels, the ones measured faster than the Vector API kernels for calls of many rows.
   */
  static boolean isWideBrgemm(String implementation) {
    return implementation.startsWith("brg")
        && (implementation.contains("avx512")
            || implementation.contains("avx10")
            || implementation.contains("amx"));
  }

  static boolean isReference(String implementation) {
    return implementation.contains("ref");
  }

  /** A oneDNN call failed: the call, its arguments and oneDNN's message. */
  static final class OneDnnException extends RuntimeException {
    OneDnnException(String call, String message, Throwable cause) {
      super("oneDNN " + call + " failed: " + message, cause);
    }
  }
}
