package io.q4spark.kernels.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.function.Function;
import java.util.stream.Collectors;

/**
 * Locates the native CUDA libraries: the driver ({@code libcuda}), NVRTC and cuBLAS. Nothing is
 * downloaded; a library that cannot be found is a {@link NotFound} result listing everything tried,
 * never an exception.
 *
 * <p>Search order, for each library, implemented as written:
 *
 * <ol>
 *   <li>The explicit path from {@link CudaOptions} ({@code driverLibrary}, {@code nvrtcLibrary},
 *       {@code cublasLibrary}). When it is set, it is the only candidate: a path that does not
 *       exist or does not load ends the search with {@link NotFound}, whose reason names it.
 *   <li>The environment variable ({@code Q4SPARK_CUDA_LIB} for the driver, {@code
 *       Q4SPARK_NVRTC_LIB} for NVRTC, {@code Q4SPARK_CUBLAS_LIB} for cuBLAS), holding a path. When
 *       it is set (and the option is not), it is likewise the only candidate.
 *   <li>The sonames, in order: driver {@code libcuda.so.1}, {@code libcuda.so}; NVRTC {@code
 *       libnvrtc.so.13}, {@code libnvrtc.so.12}, {@code libnvrtc.so}; cuBLAS {@code
 *       libcublas.so.13}, {@code libcublas.so.12}. Each soname is first given to the system loader
 *       ({@code dlopen} by name: {@code LD_LIBRARY_PATH}, the {@code ldconfig} cache, the default
 *       directories), then looked for as a file in {@code /usr/local/cuda/lib64}, {@code
 *       /usr/local/cuda/targets/x86_64-linux/lib} and {@code /usr/lib/x86_64-linux-gnu}. The first
 *       that loads wins.
 * </ol>
 *
 * <p>Why explicit settings end the search instead of falling through: a path that was configured
 * and does not load is a configuration mistake, and quietly loading another copy of the library
 * (another CUDA version, say) would hide it. Unset the option or variable to search.
 *
 * <p>Libraries are opened with {@link SymbolLookup#libraryLookup(Path, Arena)} in the global arena:
 * they stay loaded for the life of the process, like the driver's own state.
 */
public final class CudaLibraries {
  /** Directories looked in for each soname after the system loader, in order. */
  public static final List<Path> WELL_KNOWN_DIRS =
      List.of(
          Path.of("/usr/local/cuda/lib64"),
          Path.of("/usr/local/cuda/targets/x86_64-linux/lib"),
          Path.of("/usr/lib/x86_64-linux-gnu"));

  /** A native library of the CUDA stack, with its environment variable and sonames in order. */
  public enum Library {
    DRIVER("libcuda", "Q4SPARK_CUDA_LIB", "driverLibrary", List.of("libcuda.so.1", "libcuda.so")),
    NVRTC(
        "libnvrtc",
        "Q4SPARK_NVRTC_LIB",
        "nvrtcLibrary",
        List.of("libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so")),
    CUBLAS(
        "libcublas",
        "Q4SPARK_CUBLAS_LIB",
        "cublasLibrary",
        List.of("libcublas.so.13", "libcublas.so.12"));

    private final String displayName;
    private final String environmentVariable;
    private final String optionName;
    private final List<String> sonames;

    Library(String displayName, String env, String optionName, List<String> sonames) {
      this.displayName = displayName;
      this.environmentVariable = env;
      this.optionName = optionName;
      this.sonames = sonames;
    }

    /** E.g. {@code libnvrtc}. */
    public String displayName() {
      return displayName;
    }

    /** E.g. {@code Q4SPARK_NVRTC_LIB}. */
    public String environmentVariable() {
      return environmentVariable;
    }

    /** The {@link CudaOptions} component naming its explicit path, e.g. {@code nvrtcLibrary}. */
    public String optionName() {
      return optionName;
    }

    /** The sonames given to the system loader, in order. */
    public List<String> sonames() {
      return sonames;
    }

    /** The explicit path for this library in {@code options}, or null. */
    Path explicitPath(CudaOptions options) {
      return switch (this) {
        case DRIVER -> options.driverLibrary();
        case NVRTC -> options.nvrtcLibrary();
        case CUBLAS -> options.cublasLibrary();
      };
    }
  }

  /** One candidate tried, e.g. {@code libnvrtc.so.13}, and why it did not load. */
  public record Attempt(String candidate, String failure) {
    @Override
    public String toString() {
      return candidate + " (" + failure + ")";
    }
  }

  /** The outcome of a search: {@link Found} or {@link NotFound}. */
  public sealed interface Result permits Found, NotFound {
    Library library();

    /** Every candidate that failed before the outcome, in search order. */
    List<Attempt> tried();
  }

  /**
   * The library was loaded from {@code location} (a path, or a soname followed by {@code (system
   * loader)}), after the failed attempts in {@code tried}.
   */
  public record Found(Library library, SymbolLookup lookup, String location, List<Attempt> tried)
      implements Result {
    public Found {
      tried = List.copyOf(tried);
    }
  }

  /** Nothing loaded; {@link #reason()} lists every attempt. */
  public record NotFound(Library library, List<Attempt> tried) implements Result {
    public NotFound {
      tried = List.copyOf(tried);
    }

    /**
     * E.g. {@code libnvrtc not found: tried CudaOptions.nvrtcLibrary (unset), Q4SPARK_NVRTC_LIB
     * (unset), libnvrtc.so.13 (…), …}.
     */
    public String reason() {
      return library.displayName()
          + " not found: tried "
          + tried.stream().map(Attempt::toString).collect(Collectors.joining(", "));
    }
  }

  /** Opens a library by soname or by path; throws {@link IllegalArgumentException} on failure. */
  interface Opener {
    SymbolLookup byName(String soname);

    SymbolLookup byPath(Path path);
  }

  /** The real opener: {@link SymbolLookup#libraryLookup} in the global arena. */
  static final Opener SYSTEM =
      new Opener() {
        @Override
        @SuppressWarnings("restricted") // loading native code is what this class is for
        public SymbolLookup byName(String soname) {
          return SymbolLookup.libraryLookup(soname, Arena.global());
        }

        @Override
        @SuppressWarnings("restricted")
        public SymbolLookup byPath(Path path) {
          if (!Files.exists(path)) {
            throw new IllegalArgumentException("no such file");
          }
          return SymbolLookup.libraryLookup(path, Arena.global());
        }
      };

  private CudaLibraries() {}

  /** Searches for {@code library} with {@code options}, the process environment and the loader. */
  public static Result find(Library library, CudaOptions options) {
    return find(library, options, System::getenv, SYSTEM, WELL_KNOWN_DIRS);
  }

  /**
   * The search, with the environment ({@code name -> value or null}), the opener and the well-known
   * directories given, so tests can check the order without real libraries.
   */
  static Result find(
      Library library,
      CudaOptions options,
      Function<String, String> environment,
      Opener opener,
      List<Path> wellKnownDirs) {
    Objects.requireNonNull(library, "library");
    List<Attempt> tried = new ArrayList<>();
    String option = "CudaOptions." + library.optionName();
    Path explicit = library.explicitPath(options);
    if (explicit != null) {
      return openPath(library, option + "=" + explicit, explicit, opener, tried);
    }
    tried.add(new Attempt(option, "unset"));

    String env = library.environmentVariable();
    String value = environment.apply(env);
    if (value != null && !value.isBlank()) {
      return openPath(library, env + "=" + value, Path.of(value.trim()), opener, tried);
    }
    tried.add(new Attempt(env, "unset"));

    for (String soname : library.sonames()) {
      List<String> failures = new ArrayList<>();
      try {
        return new Found(library, opener.byName(soname), soname + " (system loader)", tried);
      } catch (IllegalArgumentException e) {
        failures.add("system loader: " + describe(e));
      }
      List<String> missing = new ArrayList<>();
      for (Path dir : wellKnownDirs) {
        Path path = dir.resolve(soname);
        try {
          return new Found(library, opener.byPath(path), path.toString(), tried);
        } catch (IllegalArgumentException e) {
          String why = describe(e);
          if (why.equals("no such file")) {
            missing.add(dir.toString());
          } else {
            failures.add(path + ": " + why);
          }
        }
      }
      if (!missing.isEmpty()) {
        failures.add("not in " + String.join(", ", missing));
      }
      tried.add(new Attempt(soname, String.join("; ", failures)));
    }
    return new NotFound(library, tried);
  }

  private static Result openPath(
      Library library, String candidate, Path path, Opener opener, List<Attempt> tried) {
    try {
      return new Found(library, opener.byPath(path), path.toString(), tried);
    } catch (IllegalArgumentException e) {
      tried.add(
          new Attempt(
              candidate,
              describe(e)
                  + "; an explicit setting ends the search, unset it to search the system"));
      return new NotFound(library, tried);
    }
  }

  private static String describe(IllegalArgumentException e) {
    return e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
  }
}
