package io.q4spark.kernels.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.List;

/**
 * The one binding class for NVRTC ({@code libnvrtc.so.13}, or 12), CUDA's runtime compiler: every
 * downcall handle, and typed wrappers that turn an {@code nvrtcResult} other than {@code
 * NVRTC_SUCCESS} into a {@link CudaException} naming the call, the program and the status name from
 * {@code nvrtcGetErrorString}; a compile error is a {@link CudaCompileException} with NVRTC's full
 * log and the options used.
 *
 * <p>C types map as: {@code nvrtcResult} and {@code int} to {@code JAVA_INT}, {@code size_t} to
 * {@code JAVA_LONG}, {@code nvrtcProgram} and pointers to {@code ADDRESS}.
 */
public final class Nvrtc {
  /** {@code NVRTC_SUCCESS}. */
  public static final int NVRTC_SUCCESS = 0;

  /** {@code NVRTC_ERROR_COMPILATION}: the program has errors; the log says which. */
  public static final int NVRTC_ERROR_COMPILATION = 6;

  private static final String REQUIREMENT =
      "q4spark needs NVRTC 12 or newer (point Q4SPARK_NVRTC_LIB at libnvrtc.so.13)";

  private final String location;
  private final MethodHandle nvrtcVersion;
  private final MethodHandle nvrtcCreateProgram;
  private final MethodHandle nvrtcCompileProgram;
  private final MethodHandle nvrtcGetProgramLogSize;
  private final MethodHandle nvrtcGetProgramLog;
  private final MethodHandle nvrtcGetCUBINSize;
  private final MethodHandle nvrtcGetCUBIN;
  private final MethodHandle nvrtcDestroyProgram;
  private final MethodHandle nvrtcGetErrorString;

  /** Binds every function of the NVRTC loaded as {@code lookup} from {@code location}. */
  Nvrtc(SymbolLookup lookup, String location) {
    this.location = location;
    NativeBinder b = new NativeBinder(lookup, location, REQUIREMENT);
    nvrtcVersion = b.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "nvrtcVersion");
    nvrtcCreateProgram =
        b.bind(
            FunctionDescriptor.of(
                JAVA_INT, // nvrtcResult
                ADDRESS, // nvrtcProgram *prog
                ADDRESS, // const char *src
                ADDRESS, // const char *name
                JAVA_INT, // int numHeaders
                ADDRESS, // const char * const *headers
                ADDRESS), // const char * const *includeNames
            "nvrtcCreateProgram");
    nvrtcCompileProgram =
        b.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS), "nvrtcCompileProgram");
    nvrtcGetProgramLogSize =
        b.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "nvrtcGetProgramLogSize");
    nvrtcGetProgramLog =
        b.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "nvrtcGetProgramLog");
    nvrtcGetCUBINSize =
        b.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "nvrtcGetCUBINSize");
    nvrtcGetCUBIN = b.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "nvrtcGetCUBIN");
    nvrtcDestroyProgram = b.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS), "nvrtcDestroyProgram");
    nvrtcGetErrorString = b.bind(FunctionDescriptor.of(ADDRESS, JAVA_INT), "nvrtcGetErrorString");
  }

  /** Where NVRTC was loaded from. */
  public String location() {
    return location;
  }

  /** {@code nvrtcGetErrorString}, e.g. {@code NVRTC_ERROR_COMPILATION}; never throws. */
  public String errorString(int status) {
    try {
      MemorySegment s = (MemorySegment) nvrtcGetErrorString.invokeExact(status);
      return NativeBinder.cString(s, "nvrtcResult " + status);
    } catch (Throwable t) {
      return "nvrtcResult " + status;
    }
  }

  private void check(int status, String call) {
    if (status != NVRTC_SUCCESS) {
      String name = errorString(status);
      throw new CudaException(call + " failed: " + name + " (" + status + ")", status, name, null);
    }
  }

  /** {@code nvrtcVersion} as {@code major.minor}, e.g. {@code 13.0}. */
  public String version() {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment major = arena.allocate(JAVA_INT);
      MemorySegment minor = arena.allocate(JAVA_INT);
      int s;
      try {
        s = (int) nvrtcVersion.invokeExact(major, minor);
      } catch (Throwable t) {
        throw NativeBinder.propagate("nvrtcVersion", t);
      }
      check(s, "nvrtcVersion()");
      return major.get(JAVA_INT, 0) + "." + minor.get(JAVA_INT, 0);
    }
  }

  /**
   * Compiles {@code source} (CUDA C++, no extra headers) under {@code programName} with {@code
   * options} and returns the CUBIN; the options must name a real architecture ({@code
   * --gpu-architecture=sm_XX}), else NVRTC makes PTX only and this fails. The program is always
   * destroyed.
   */
  public byte[] compileToCubin(String programName, String source, List<String> options) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment programOut = arena.allocate(ADDRESS);
      String what = "(" + programName + ")";
      int s;
      try {
        s =
            (int)
                nvrtcCreateProgram.invokeExact(
                    programOut,
                    arena.allocateFrom(source),
                    arena.allocateFrom(programName),
                    0,
                    MemorySegment.NULL,
                    MemorySegment.NULL);
      } catch (Throwable t) {
        throw NativeBinder.propagate("nvrtcCreateProgram", t);
      }
      check(s, "nvrtcCreateProgram" + what);
      MemorySegment program = programOut.get(ADDRESS, 0);
      try {
        MemorySegment optionArray = arena.allocate(ADDRESS, Math.max(1, options.size()));
        for (int i = 0; i < options.size(); i++) {
          optionArray.setAtIndex(ADDRESS, i, arena.allocateFrom(options.get(i)));
        }
        try {
          s = (int) nvrtcCompileProgram.invokeExact(program, options.size(), optionArray);
        } catch (Throwable t) {
          throw NativeBinder.propagate("nvrtcCompileProgram", t);
        }
        if (s != NVRTC_SUCCESS) {
          String log = log(program, arena, programName);
          throw new CudaCompileException(programName, options, s, errorString(s), log);
        }
        MemorySegment size = arena.allocate(JAVA_LONG);
        try {
          s = (int) nvrtcGetCUBINSize.invokeExact(program, size);
        } catch (Throwable t) {
          throw NativeBinder.propagate("nvrtcGetCUBINSize", t);
        }
        check(s, "nvrtcGetCUBINSize" + what);
        long bytes = size.get(JAVA_LONG, 0);
        if (bytes <= 0) {
          throw new CudaException(
              "nvrtcGetCUBINSize"
                  + what
                  + " returned "
                  + bytes
                  + " bytes, expected a CUBIN: the options "
                  + options
                  + " must name a real architecture (--gpu-architecture=sm_XX, not compute_XX)");
        }
        MemorySegment cubin = arena.allocate(bytes);
        try {
          s = (int) nvrtcGetCUBIN.invokeExact(program, cubin);
        } catch (Throwable t) {
          throw NativeBinder.propagate("nvrtcGetCUBIN", t);
        }
        check(s, "nvrtcGetCUBIN" + what);
        return cubin.toArray(JAVA_BYTE);
      } finally {
        try {
          // NVRTC_SUCCESS for a program that was created; nothing to add to a failure in flight
          int ignored = (int) nvrtcDestroyProgram.invokeExact(programOut);
        } catch (Throwable t) {
          // as above: the compile's own outcome is what the caller needs
        }
      }
    }
  }

  /** The program's log, without its terminating NUL. */
  private String log(MemorySegment program, Arena arena, String programName) {
    MemorySegment size = arena.allocate(JAVA_LONG);
    int s;
    try {
      s = (int) nvrtcGetProgramLogSize.invokeExact(program, size);
    } catch (Throwable t) {
      throw NativeBinder.propagate("nvrtcGetProgramLogSize", t);
    }
    check(s, "nvrtcGetProgramLogSize(" + programName + ")");
    long bytes = size.get(JAVA_LONG, 0);
    if (bytes <= 1) {
      return "";
    }
    MemorySegment log = arena.allocate(bytes);
    try {
      s = (int) nvrtcGetProgramLog.invokeExact(program, log);
    } catch (Throwable t) {
      throw NativeBinder.propagate("nvrtcGetProgramLog", t);
    }
    check(s, "nvrtcGetProgramLog(" + programName + ")");
    return log.getString(0);
  }
}
