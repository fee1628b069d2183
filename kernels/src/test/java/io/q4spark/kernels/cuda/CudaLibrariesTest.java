package io.q4spark.kernels.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.q4spark.kernels.cuda.CudaLibraries.Found;
import io.q4spark.kernels.cuda.CudaLibraries.Library;
import io.q4spark.kernels.cuda.CudaLibraries.NotFound;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.Test;

class CudaLibrariesTest {
  private static final List<Path> DIRS = List.of(Path.of("/fake/cuda/lib64"), Path.of("/fake/lib"));

  /** Loads only the names and paths it was given, and records every attempt in order. */
  private static final class FakeOpener implements CudaLibraries.Opener {
    final Set<String> loadable;
    final List<String> attempts = new ArrayList<>();

    FakeOpener(String... loadable) {
      this.loadable = Set.of(loadable);
    }

    private SymbolLookup open(String what) {
      attempts.add(what);
      if (loadable.contains(what)) {
        return name -> Optional.<MemorySegment>empty();
      }
      throw new IllegalArgumentException(what.startsWith("/") ? "no such file" : "dlopen failed");
    }

    @Override
    public SymbolLookup byName(String soname) {
      return open(soname);
    }

    @Override
    public SymbolLookup byPath(Path path) {
      return open(path.toString());
    }
  }

  private static CudaLibraries.Result find(
      Library library, CudaOptions options, Map<String, String> env, FakeOpener opener) {
    return CudaLibraries.find(library, options, env::get, opener, DIRS);
  }

  @Test
  void explicitOptionWinsOverEnvironmentAndSonames() {
    FakeOpener opener =
        new FakeOpener("/opt/nvrtc/libnvrtc.so.13", "/env/libnvrtc.so", "libnvrtc.so.13");
    CudaOptions options =
        CudaOptions.defaults().withLibraries(null, Path.of("/opt/nvrtc/libnvrtc.so.13"), null);
    Found found =
        assertInstanceOf(
            Found.class,
            find(Library.NVRTC, options, Map.of("Q4SPARK_NVRTC_LIB", "/env/libnvrtc.so"), opener));
    assertEquals("/opt/nvrtc/libnvrtc.so.13", found.location());
    assertEquals(List.of("/opt/nvrtc/libnvrtc.so.13"), opener.attempts);
  }

  @Test
  void environmentVariableWinsOverSonames() {
    FakeOpener opener = new FakeOpener("/env/libcuda.so.1", "libcuda.so.1");
    Found found =
        assertInstanceOf(
            Found.class,
            find(
                Library.DRIVER,
                CudaOptions.defaults(),
                Map.of("Q4SPARK_CUDA_LIB", "/env/libcuda.so.1"),
                opener));
    assertEquals("/env/libcuda.so.1", found.location());
    assertEquals(List.of("/env/libcuda.so.1"), opener.attempts);
    assertEquals("CudaOptions.driverLibrary (unset)", found.tried().getFirst().toString());
  }

  @Test
  void sonamesInOrderThenWellKnownDirectories() {
    FakeOpener opener = new FakeOpener("/fake/lib/libnvrtc.so.12");
    Found found =
        assertInstanceOf(
            Found.class, find(Library.NVRTC, CudaOptions.defaults(), Map.of(), opener));
    assertEquals("/fake/lib/libnvrtc.so.12", found.location());
    assertEquals(
        List.of(
            "libnvrtc.so.13",
            "/fake/cuda/lib64/libnvrtc.so.13",
            "/fake/lib/libnvrtc.so.13",
            "libnvrtc.so.12",
            "/fake/cuda/lib64/libnvrtc.so.12",
            "/fake/lib/libnvrtc.so.12"),
        opener.attempts);
  }

  @Test
  void systemLoaderBeforeDirectories() {
    FakeOpener opener = new FakeOpener("libcublas.so.13", "/fake/cuda/lib64/libcublas.so.13");
    Found found =
        assertInstanceOf(
            Found.class, find(Library.CUBLAS, CudaOptions.defaults(), Map.of(), opener));
    assertEquals("libcublas.so.13 (system loader)", found.location());
  }

  @Test
  void nothingFoundListsEveryAttempt() {
    NotFound notFound =
        assertInstanceOf(
            NotFound.class,
            find(Library.NVRTC, CudaOptions.defaults(), Map.of(), new FakeOpener()));
    assertEquals(
        "libnvrtc not found: tried CudaOptions.nvrtcLibrary (unset), Q4SPARK_NVRTC_LIB (unset),"
            + " libnvrtc.so.13 (system loader: dlopen failed; not in /fake/cuda/lib64, /fake/lib),"
            + " libnvrtc.so.12 (system loader: dlopen failed; not in /fake/cuda/lib64, /fake/lib),"
            + " libnvrtc.so (system loader: dlopen failed; not in /fake/cuda/lib64, /fake/lib)",
        notFound.reason());
  }

  @Test
  void missingExplicitPathEndsTheSearchAndIsNamed() {
    FakeOpener opener = new FakeOpener("libcuda.so.1");
    CudaOptions options =
        CudaOptions.defaults().withLibraries(Path.of("/nowhere/libcuda.so.1"), null, null);
    NotFound notFound =
        assertInstanceOf(NotFound.class, find(Library.DRIVER, options, Map.of(), opener));
    assertEquals(List.of("/nowhere/libcuda.so.1"), opener.attempts);
    assertTrue(
        notFound
            .reason()
            .startsWith(
                "libcuda not found: tried CudaOptions.driverLibrary=/nowhere/libcuda.so.1 (no such"
                    + " file; an explicit setting ends the search"),
        notFound.reason());
  }

  @Test
  void missingEnvironmentPathEndsTheSearchAndIsNamed() {
    FakeOpener opener = new FakeOpener("libcublas.so.13");
    NotFound notFound =
        assertInstanceOf(
            NotFound.class,
            find(
                Library.CUBLAS,
                CudaOptions.defaults(),
                Map.of("Q4SPARK_CUBLAS_LIB", "/nowhere/libcublas.so"),
                opener));
    assertTrue(
        notFound.reason().contains("Q4SPARK_CUBLAS_LIB=/nowhere/libcublas.so (no such file"),
        notFound.reason());
  }

  @Test
  void blankEnvironmentVariableCountsAsUnset() {
    FakeOpener opener = new FakeOpener("libcuda.so.1");
    Found found =
        assertInstanceOf(
            Found.class,
            find(Library.DRIVER, CudaOptions.defaults(), Map.of("Q4SPARK_CUDA_LIB", " "), opener));
    assertEquals("libcuda.so.1 (system loader)", found.location());
  }

  @Test
  void sonamesAndVariablesArePinned() {
    assertEquals(List.of("libcuda.so.1", "libcuda.so"), Library.DRIVER.sonames());
    assertEquals(
        List.of("libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"), Library.NVRTC.sonames());
    assertEquals(List.of("libcublas.so.13", "libcublas.so.12"), Library.CUBLAS.sonames());
    assertEquals("Q4SPARK_CUDA_LIB", Library.DRIVER.environmentVariable());
    assertEquals("Q4SPARK_NVRTC_LIB", Library.NVRTC.environmentVariable());
    assertEquals("Q4SPARK_CUBLAS_LIB", Library.CUBLAS.environmentVariable());
    assertEquals(
        List.of(
            Path.of("/usr/local/cuda/lib64"),
            Path.of("/usr/local/cuda/targets/x86_64-linux/lib"),
            Path.of("/usr/lib/x86_64-linux-gnu")),
        CudaLibraries.WELL_KNOWN_DIRS);
  }
}
