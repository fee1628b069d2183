package io.q4spark.kernels.onednn;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;
import org.bytedeco.javacpp.Loader;

/**
 * The binding to the OpenMP runtime oneDNN runs on: the {@code libgomp.so.1} shipped in the dnnl
 * platform jar, which JavaCPP loads beside {@code libdnnl.so.3} (key {@code gomp@.1} of {@link
 * Loader#getLoadedLibraries()}). The preset does not map OpenMP's API, so the calls are bound here
 * through the Foreign Function API: {@code omp_set_num_threads} looked up by that library's path
 * (the same file, so the same loaded copy), and libc's {@code setenv} for the wait policy.
 *
 * <p>Thread count: oneDNN parallelizes each call over {@code omp_get_max_threads()} threads of the
 * calling thread, which defaults to every core; {@code KernelOptions.threads} bounds it by calling
 * {@code omp_set_num_threads} on the calling thread before a primitive is created and before each
 * run (the setting is per calling thread in OpenMP). Without the library (another threading
 * runtime) the call is a no-op and {@link #unavailableReason()} says why.
 *
 * <p>Wait policy: by default libgomp's worker threads spin after each parallel region before they
 * sleep. Measured on the 2-core machine: 10 ms of CPU time within 100 ms after a burst of calls, a
 * core taken from Spark's other task threads and from whatever runs next. {@link
 * #waitPassivelyUnlessSet()}, called before the natives load (libgomp reads its environment once,
 * when it is loaded), sets {@code OMP_WAIT_POLICY=PASSIVE} unless the process environment already
 * has the variable: set it (e.g. to {@code ACTIVE}) to keep OpenMP's default. Waking a sleeping
 * worker costs microseconds per call.
 */
// Binding native functions is what this class is for; the JVM runs with
// --enable-native-access=ALL-UNNAMED (declared in the root pom), so the warning says nothing new.
@SuppressWarnings("restricted")
final class OpenMp {
  private static final String LIBRARY_KEY = "gomp@.1";
  static final String WAIT_POLICY = "OMP_WAIT_POLICY";

  private OpenMp() {}

  /**
   * Sets {@code OMP_WAIT_POLICY=PASSIVE} in the process environment (libc's, which native libraries
   * read) unless the variable is set; before libgomp is loaded. Returns null, or why it could not
   * (OpenMP then keeps its default, which costs CPU time, not correctness).
   */
  static String waitPassivelyUnlessSet() {
    if (System.getenv(WAIT_POLICY) != null) {
      return null;
    }
    try (Arena arena = Arena.ofConfined()) {
      Linker linker = Linker.nativeLinker();
      MethodHandle setenv =
          linker.downcallHandle(
              linker.defaultLookup().find("setenv").orElseThrow(),
              FunctionDescriptor.of(
                  ValueLayout.JAVA_INT,
                  ValueLayout.ADDRESS,
                  ValueLayout.ADDRESS,
                  ValueLayout.JAVA_INT));
      int status =
          (int)
              setenv.invokeExact(arena.allocateFrom(WAIT_POLICY), arena.allocateFrom("PASSIVE"), 0);
      return status == 0 ? null : "setenv(" + WAIT_POLICY + ", PASSIVE) returned " + status;
    } catch (Throwable e) {
      return "setenv(" + WAIT_POLICY + ", PASSIVE) failed: " + e;
    }
  }

  /** The value of {@code name} in libc's environment (not Java's snapshot of it), or null. */
  static String nativeEnvironment(String name) {
    try (Arena arena = Arena.ofConfined()) {
      Linker linker = Linker.nativeLinker();
      MethodHandle getenv =
          linker.downcallHandle(
              linker.defaultLookup().find("getenv").orElseThrow(),
              FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS));
      MemorySegment value = (MemorySegment) getenv.invokeExact(arena.allocateFrom(name));
      return value.equals(MemorySegment.NULL)
          ? null
          : value.reinterpret(Long.MAX_VALUE).getString(0);
    } catch (Throwable e) {
      throw new IllegalStateException("getenv(" + name + ") failed", e);
    }
  }

  /** Sets the number of threads of the calling thread's next parallel regions. */
  static void setNumThreads(int threads) {
    if (Binding.SET_NUM_THREADS == null) {
      return;
    }
    try {
      Binding.SET_NUM_THREADS.invokeExact(threads);
    } catch (Throwable e) {
      throw new IllegalStateException("omp_set_num_threads(" + threads + ") failed", e);
    }
  }

  /** Why the thread count cannot be set, or null when it can. */
  static String unavailableReason() {
    return Binding.UNAVAILABLE;
  }

  /** {@code omp_set_num_threads}, bound on first use, after oneDNN's natives are loaded. */
  private static final class Binding {
    private static final MethodHandle SET_NUM_THREADS;
    private static final String UNAVAILABLE;

    static {
      OneDnn.load();
      MethodHandle handle = null;
      String reason = null;
      String path = Loader.getLoadedLibraries().get(LIBRARY_KEY);
      if (path == null) {
        reason =
            "JavaCPP loaded no "
                + LIBRARY_KEY
                + " with oneDNN (loaded: "
                + Loader.getLoadedLibraries().keySet()
                + ")";
      } else {
        try {
          SymbolLookup lookup = SymbolLookup.libraryLookup(Path.of(path), Arena.global());
          handle =
              Linker.nativeLinker()
                  .downcallHandle(
                      lookup.find("omp_set_num_threads").orElseThrow(),
                      FunctionDescriptor.ofVoid(ValueLayout.JAVA_INT));
        } catch (RuntimeException | LinkageError e) {
          reason = "omp_set_num_threads could not be bound from " + path + ": " + e;
        }
      }
      SET_NUM_THREADS = handle;
      UNAVAILABLE = reason;
    }
  }
}
