package io.q4spark.kernels.cuda;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.Optional;

/**
 * Binds the functions of one loaded library to downcall handles for a binding class ({@link
 * CudaDriver}, {@link Nvrtc}, {@link Cublas}); a missing symbol is a {@link CudaException} naming
 * the symbol and the library's location.
 */
// Binding native functions is what this class is for; the JVM runs with
// --enable-native-access=ALL-UNNAMED (declared in the root pom), so the warning says nothing new.
@SuppressWarnings("restricted")
final class NativeBinder {
  private static final Linker LINKER = Linker.nativeLinker();

  private final SymbolLookup lookup;
  private final String location;
  private final String requirement;

  /**
   * @param requirement what a missing symbol means for the user, e.g. {@code q4spark needs a CUDA
   *     12 or newer driver}
   */
  NativeBinder(SymbolLookup lookup, String location, String requirement) {
    this.lookup = lookup;
    this.location = location;
    this.requirement = requirement;
  }

  /** The first of {@code names} the library exports, bound with {@code descriptor}. */
  MethodHandle bind(FunctionDescriptor descriptor, String... names) {
    for (String name : names) {
      Optional<MemorySegment> symbol = lookup.find(name);
      if (symbol.isPresent()) {
        return LINKER.downcallHandle(symbol.get(), descriptor);
      }
    }
    throw new CudaException(
        "the library at "
            + location
            + " exports none of "
            + String.join(", ", names)
            + ": "
            + requirement);
  }

  /** Where the library was loaded from. */
  String location() {
    return location;
  }

  /** The NUL-terminated string at {@code pointer}, or {@code fallback} for NULL. */
  static String cString(MemorySegment pointer, String fallback) {
    if (pointer.equals(MemorySegment.NULL)) {
      return fallback;
    }
    return pointer.reinterpret(Long.MAX_VALUE).getString(0);
  }

  /**
   * Turns what {@code invokeExact} threw into an unchecked exception: runtime exceptions and errors
   * as they are, anything else wrapped in a {@link CudaException} naming {@code call}.
   */
  static RuntimeException propagate(String call, Throwable t) {
    if (t instanceof RuntimeException r) {
      return r;
    }
    if (t instanceof Error e) {
      throw e;
    }
    return new CudaException(call + " could not be invoked: " + t, t);
  }
}
